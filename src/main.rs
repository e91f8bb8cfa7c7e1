//! The `deephide` command line. Errors print one clear line and exit non-zero; no panic traces.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "deephide", version, about = "Unlearnable image data sets by semantic deep hiding")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Check every op's analytic gradient against f64 central finite differences.
    Gradcheck(cli::gradcheck::GradcheckArgs),
    /// Time the CPU kernels (median ms and GFLOP/s) and whole training steps.
    Bench(cli::bench::BenchArgs),
    /// Run training steps with per-op timers and print where the time goes.
    Profile(cli::profile::ProfileArgs),
    /// Write per-class semantic images, a preview grid and their intra/inter-class distances.
    Semantic(cli::semantic::SemanticArgs),
    /// Train the invertible hiding network (covers from --data, secrets from --semantic).
    Train(cli::train::TrainArgs),
    /// Make a data set unlearnable with a trained network (or hide one image in another).
    Hide(cli::hide::HideArgs),
    /// Make a data set unlearnable with a peer method (em, rem, tap, lsp, ar, ops, class-wise noise) or dh.
    Poison(cli::poison::PoisonArgs),
    /// Recover the image hidden in a protected image and say which class it belongs to.
    Reveal(cli::hide::RevealArgs),
    /// Train victims on a (protected) training set under countermeasures; report clean test accuracy.
    Evaluate(cli::evaluate::EvaluateArgs),
    /// Train the ResNet-18 feature extractor (LFC's G) on clean data and save it.
    TrainFeatures(cli::train_features::TrainFeaturesArgs),
    /// Write a class-balanced subset of an IDX data set (how the bundled Fashion-MNIST subset is made).
    MakeSubset(cli::make_subset::MakeSubsetArgs),
    /// CUDA kernels: registers, shared memory and spills (NVRTC's ptxas report), launch configuration, occupancy.
    Kernels(cli::kernels::KernelsArgs),
}

/// Ok(false): the command ran but its check failed (exit 1). Err: it could not run (exit 2).
fn run(cli: Cli) -> deephide::Result<bool> {
    match cli.cmd {
        Cmd::Gradcheck(a) => cli::gradcheck::run(a),
        Cmd::Bench(a) => cli::bench::run(a),
        Cmd::Profile(a) => cli::profile::run(a),
        Cmd::Semantic(a) => cli::semantic::run(a),
        Cmd::Train(a) => cli::train::run(a),
        Cmd::Hide(a) => cli::hide::run(a),
        Cmd::Poison(a) => cli::poison::run(a),
        Cmd::Reveal(a) => cli::hide::run_reveal(a),
        Cmd::Evaluate(a) => cli::evaluate::run(a),
        Cmd::TrainFeatures(a) => cli::train_features::run(a),
        Cmd::MakeSubset(a) => cli::make_subset::run(a),
        Cmd::Kernels(a) => cli::kernels::run(a),
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

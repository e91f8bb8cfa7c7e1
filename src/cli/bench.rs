//! `deephide bench conv|train-step|victim|hide`: timings users can compare across machines and back ends.

use clap::{Args, Subcommand};

use deephide::bench;
use deephide::cpu::SimdLevel;

#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: BenchWhat,
    /// Worker threads for the CPU back end (default: all cores).
    #[arg(long, global = true)]
    threads: Option<usize>,
    /// Force a SIMD path: portable, avx2 or avx512 (default: the best this CPU has).
    #[arg(long, global = true)]
    simd: Option<String>,
}

#[derive(Subcommand)]
enum BenchWhat {
    /// Forward, input-gradient and weight-gradient convolutions at the hiding network's and ResNet-18's shapes.
    Conv {
        #[arg(long, default_value_t = 32)]
        batch: usize,
        #[arg(long, default_value_t = 5)]
        reps: usize,
        /// cpu, cuda, cuda:N, wgpu or auto.
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Training steps of a victim (forward, cross-entropy, backward, SGD with momentum, clipping), as
    /// `evaluate` trains it and ../shared/peers/torch_victims.py does; ends with `img_per_s <n>`.
    Victim {
        /// small-cnn or resnet18.
        #[arg(long, default_value = "small-cnn")]
        model: String,
        /// Base width (default: 32 for small-cnn, 8 for resnet18 as in the victim protocol).
        #[arg(long)]
        width: Option<usize>,
        #[arg(long, default_value_t = 128)]
        batch: usize,
        #[arg(long, default_value_t = 20)]
        steps: usize,
        #[arg(long, default_value_t = 28)]
        size: usize,
        #[arg(long, default_value_t = 1)]
        channels: usize,
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// The forward pass of `hide` (hiding network, no gradients, read back); ends with `img_per_s <n>`.
    Hide {
        #[arg(long, default_value_t = 64)]
        batch: usize,
        #[arg(long, default_value_t = 4)]
        blocks: usize,
        #[arg(long, default_value_t = 28)]
        size: usize,
        #[arg(long, default_value_t = 1)]
        channels: usize,
        #[arg(long, default_value_t = 10)]
        steps: usize,
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Whole training steps of the hiding network (hide, reveal, losses, backward, Adam), as
    /// ../shared/peers/torch_dh.py does; ends with `step_ms_median <ms>`.
    TrainStep {
        #[arg(long, default_value_t = 32)]
        batch: usize,
        #[arg(long, default_value_t = 16)]
        blocks: usize,
        #[arg(long, default_value_t = 32)]
        size: usize,
        #[arg(long, default_value_t = 3)]
        channels: usize,
        #[arg(long, default_value_t = 5)]
        steps: usize,
        #[arg(long, default_value = "cpu")]
        device: String,
    },
}

fn print_peak_rss() {
    match bench::peak_rss_mib() {
        Some(m) => println!("peak_rss_mib {m:.0}"),
        None => println!("peak_rss_mib unknown (no /proc/self/status)"),
    }
}

pub fn run(a: BenchArgs) -> deephide::Result<bool> {
    if let Some(t) = a.threads {
        crate::cli::set_threads(t)?;
    }
    if let Some(s) = &a.simd {
        SimdLevel::set_override(Some(SimdLevel::parse(s)?))?;
    }
    println!("cpu: {} threads, {} kernels", rayon::current_num_threads(), SimdLevel::detect().name());
    match a.what {
        BenchWhat::Conv { batch, reps, device } => {
            let device = deephide::Device::parse(&device)?;
            println!("conv on {}", device.describe());
            let mut results = Vec::new();
            for s in bench::conv_shapes(batch) {
                results.push(bench::bench_conv(&s, reps, &device)?);
            }
            print!("{}", bench::format_conv(&results));
        }
        BenchWhat::TrainStep { batch, blocks, size, channels, steps, device } => {
            let device = deephide::Device::parse(&device)?;
            let o = bench::StepBench { batch, blocks, size, channels, steps };
            if size % 2 != 0 {
                return Err(deephide::Error::msg(format!("--size must be even, got {size}")));
            }
            println!("hiding network: {blocks} blocks, batch {batch}, {size}x{size}x{channels}, device {}", device.describe());
            let t = bench::hiding_train_steps_timed(&o, &device, |i| eprint!("\rstep {i}/{steps}"))?;
            eprintln!();
            let med = bench::median(&t.wall_ms);
            let cpu = bench::median(&t.cpu_ms);
            let flops = bench::hiding_step_conv_flops(&o);
            println!("steps_ms {}", t.wall_ms.iter().map(|t| format!("{t:.1}")).collect::<Vec<_>>().join(" "));
            println!("conv GFLOP per step {:.1}, {:.1} GFLOP/s over the whole step", flops / 1e9, flops / (med * 1e-3) / 1e9);
            // On a shared machine wall time includes waiting for a core; CPU time per step (all threads)
            // divided by the thread count is what the step would take with the cores to itself.
            println!(
                "step_cpu_ms_median {cpu:.1} (all threads; {:.1} GFLOP per CPU-second)",
                flops / (cpu * 1e-3) / 1e9
            );
            println!("step_ms_median {med:.1}");
            print_peak_rss();
        }
        BenchWhat::Victim { model, width, batch, steps, size, channels, device } => {
            let device = deephide::Device::parse(&device)?;
            if batch < 2 || steps == 0 {
                return Err(deephide::Error::msg("--batch must be at least 2 (BatchNorm) and --steps at least 1"));
            }
            let width = width.or(if model.starts_with("resnet") { Some(8) } else { None });
            println!("victim {model} width {}, batch {batch}, {channels}x{size}x{size}, device {}", width.map_or("default".into(), |w| w.to_string()), device.describe());
            let t = bench::victim_train_steps_width(&model, width, batch, (channels, size, size), steps, &device, |i| eprint!("\rstep {i}/{steps}"))?;
            eprintln!();
            let med = bench::median(&t);
            println!("step_ms_median {med:.1}");
            println!("img_per_s {:.0}", batch as f64 / (med * 1e-3));
            print_peak_rss();
        }
        BenchWhat::Hide { batch, blocks, size, channels, steps, device } => {
            let device = deephide::Device::parse(&device)?;
            if size % 2 != 0 || batch == 0 || steps == 0 {
                return Err(deephide::Error::msg("--size must be even, --batch and --steps at least 1"));
            }
            println!("hide forward: {blocks} blocks, batch {batch}, {channels}x{size}x{size}, device {}", device.describe());
            let o = bench::StepBench { batch, blocks, size, channels, steps };
            let t = bench::hide_forward(&o, &device, |i| eprint!("\rbatch {i}/{steps}"))?;
            eprintln!();
            let med = bench::median(&t);
            println!("batch_ms_median {med:.1}");
            println!("img_per_s {:.0}", batch as f64 / (med * 1e-3));
            print_peak_rss();
        }
    }
    Ok(true)
}

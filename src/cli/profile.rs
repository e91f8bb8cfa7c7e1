//! `deephide profile`: training steps with per-op timers, as a table sorted by total time.

use clap::Args;

use deephide::bench::{self, StepBench};
use deephide::{profile, Device};

#[derive(Args)]
pub struct ProfileArgs {
    /// cpu, cuda, cuda:N, wgpu or auto.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Timed steps (after one warm-up step).
    #[arg(long, default_value_t = 2)]
    steps: usize,
    /// Which training to profile: hiding (the hiding network), small-cnn or resnet18 (victims).
    #[arg(long, default_value = "hiding")]
    model: String,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[arg(long, default_value_t = 16)]
    blocks: usize,
    #[arg(long, default_value_t = 32)]
    size: usize,
    #[arg(long, default_value_t = 3)]
    channels: usize,
}

pub fn run(a: ProfileArgs) -> deephide::Result<bool> {
    let device = Device::parse(&a.device)?;
    if !["hiding", "victim", "small-cnn", "resnet18"].contains(&a.model.as_str()) {
        return Err(deephide::Error::msg(format!("unknown --model `{}`: expected hiding, small-cnn or resnet18", a.model)));
    }
    let peak = if device.is_cpu() { deephide::cpu::measure_peak_gflops(200) } else { 0.0 };
    let what = if a.model == "hiding" { format!("the hiding network ({} blocks)", a.blocks) } else { format!("a {} victim", a.model) };
    println!("profiling {} training steps of {what}, batch {}, {}x{}x{}, on {}", a.steps, a.batch, a.size, a.size, a.channels, device.describe());
    if peak > 0.0 {
        println!("peak: {peak:.0} GFLOP/s (our best micro-kernel on L1-resident data, all threads)");
    }
    let o = StepBench { batch: a.batch, blocks: a.blocks, size: a.size, channels: a.channels, steps: a.steps };
    // Op timers start after the warm-up step (step 0), so one-time costs do not count.
    #[allow(unused_mut)]
    let mut device_note = String::new();
    #[cfg(feature = "wgpu")]
    if let Device::Wgpu(be) = &device {
        // Device-side times: timestamp queries around every dispatch when the adapter has them, else
        // every dispatch is waited for so that the host timers around each op include its kernels.
        device_note = if be.enable_timestamps(true)? {
            "wgpu: kernel times from timestamp queries (rows `gpu <entry point>`); the op rows are host-side recording times"
                .into()
        } else {
            be.set_serialize(true)?;
            "wgpu: this adapter has no timestamp queries; every dispatch is waited for, so op rows include device time (and the steps run slower than unprofiled)"
                .into()
        };
    }
    let on_step = |i: usize| {
        if i == 0 {
            profile::reset();
            profile::enable(true);
        }
        eprint!("\rstep {i}/{}", a.steps);
    };
    let times = if a.model == "hiding" {
        bench::hiding_train_steps(&o, &device, on_step)
    } else {
        let arch = if a.model == "victim" { "small-cnn" } else { a.model.as_str() };
        bench::victim_train_steps(arch, a.batch, (a.channels, a.size, a.size), a.steps, &device, on_step)
    };
    profile::enable(false);
    #[cfg(feature = "wgpu")]
    if let Device::Wgpu(be) = &device {
        be.enable_timestamps(false)?;
        be.set_serialize(false)?;
    }
    let times = times?;
    eprintln!();
    let total: f64 = times.iter().sum::<f64>() / 1e3;
    let stats = profile::snapshot();
    if !device_note.is_empty() {
        println!("{device_note}");
    }
    // Device kernel rows and host op rows overlap in time, so each gets its own table (and shares).
    let (gpu, host): (Vec<_>, Vec<_>) = stats.into_iter().partition(|o| o.name.starts_with("gpu "));
    if !gpu.is_empty() {
        println!("device kernels:");
        print!("{}", profile::format_table(&gpu, total, peak));
        println!("host-side ops:");
    }
    print!("{}", profile::format_table(&host, total, peak));
    println!("step_ms_median {:.1}", bench::median(&times));
    Ok(true)
}

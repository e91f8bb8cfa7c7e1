//! Benchmarks behind `deephide bench` and `cargo bench`: the conv shapes of the hiding network and of the
//! victims' ResNet-18, and whole training steps. Timings are medians over repeated runs after a warm-up.

use std::time::Instant;

use crate::dtype::DType;
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::{no_grad, Result};

/// One conv shape to time.
#[derive(Clone, Copy, Debug)]
pub struct ConvShape {
    pub name: &'static str,
    pub n: usize,
    pub cin: usize,
    pub cout: usize,
    pub hw: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
}

impl ConvShape {
    pub fn out_hw(&self) -> usize {
        (self.hw + 2 * self.pad - self.k) / self.stride + 1
    }
    /// 2 * N * Cout * Ho * Wo * Cin * Kh * Kw (the same for forward, input and weight gradient).
    pub fn flops(&self) -> f64 {
        let o = self.out_hw();
        2.0 * (self.n * self.cout * o * o * self.cin * self.k * self.k) as f64
    }
}

/// The hiding network's dense-block convs (batch 32, 16x16 sub-band maps) for C-channel images, and the
/// victim ResNet-18 convs at 32x32.
pub fn conv_shapes(batch: usize) -> Vec<ConvShape> {
    let mut v = Vec::new();
    for (tag, c4) in [("rgb", 12), ("gray", 4)] {
        for i in 0..5 {
            let (cin, cout) = (c4 + 32 * i, if i < 4 { 32 } else { c4 });
            v.push(ConvShape { name: if tag == "rgb" { "hiding rgb" } else { "hiding gray" }, n: batch, cin, cout, hw: 16, k: 3, stride: 1, pad: 1 });
        }
    }
    for (cin, cout, hw, k, s, p) in [(64, 64, 32, 3, 1, 1), (64, 128, 32, 3, 2, 1), (128, 128, 16, 3, 1, 1), (64, 128, 32, 1, 2, 0), (128, 256, 16, 1, 2, 0)] {
        v.push(ConvShape { name: "resnet18", n: batch, cin, cout, hw, k, stride: s, pad: p });
    }
    v
}

pub struct Timing {
    pub median_ms: f64,
    pub min_ms: f64,
    /// Median CPU time of the whole process (all threads) per run: unlike wall time, it does not grow
    /// while other programs hold the cores, so it tracks kernel efficiency on a busy machine.
    pub cpu_ms: f64,
}

/// CPU time used by this process so far (all threads), in ms; NaN where unavailable.
pub fn process_cpu_ms() -> f64 {
    #[cfg(target_os = "linux")]
    {
        #[repr(C)]
        struct Timespec {
            sec: i64,
            nsec: i64,
        }
        unsafe extern "C" {
            fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
        }
        const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
        let mut ts = Timespec { sec: 0, nsec: 0 };
        // SAFETY: clock_gettime writes one timespec.
        if unsafe { clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &mut ts) } == 0 {
            return ts.sec as f64 * 1e3 + ts.nsec as f64 / 1e6;
        }
    }
    f64::NAN
}

/// Median and minimum wall time (and median CPU time) of `f` over `reps` runs after one warm-up run.
pub fn time_it(reps: usize, mut f: impl FnMut() -> Result<()>) -> Result<Timing> {
    f()?;
    let mut t = Vec::with_capacity(reps);
    let mut c = Vec::with_capacity(reps);
    for _ in 0..reps.max(1) {
        let (s, cs) = (Instant::now(), process_cpu_ms());
        f()?;
        t.push(s.elapsed().as_secs_f64() * 1e3);
        c.push(process_cpu_ms() - cs);
    }
    t.sort_by(|a, b| a.total_cmp(b));
    Ok(Timing { median_ms: t[t.len() / 2], min_ms: t[0], cpu_ms: median(&c) })
}

pub struct ConvResult {
    pub shape: ConvShape,
    /// forward, input gradient, weight gradient
    pub times: [Timing; 3],
}

impl ConvResult {
    pub fn gflops(&self, i: usize) -> f64 {
        self.shape.flops() / (self.times[i].median_ms * 1e-3) / 1e9
    }
    /// GFLOP per CPU-second (per busy core): the efficiency figure that a loaded machine does not skew.
    pub fn gflops_per_cpu_s(&self, i: usize) -> f64 {
        self.shape.flops() / (self.times[i].cpu_ms * 1e-3) / 1e9
    }
}

/// Time the three conv passes of one shape on `device`; on a GPU each run waits for the device, so the
/// times are kernel times plus one submit.
pub fn bench_conv(s: &ConvShape, reps: usize, device: &crate::device::Device) -> Result<ConvResult> {
    let mut rng = Rng::new(0);
    let o = s.out_hw();
    let x = Tensor::randn(&[s.n, s.cin, s.hw, s.hw], 1.0, DType::F32, &mut rng).to_device(device)?;
    let w = Tensor::randn(&[s.cout, s.cin, s.k, s.k], 0.1, DType::F32, &mut rng).to_device(device)?;
    let b = Tensor::randn(&[s.cout], 0.1, DType::F32, &mut rng).to_device(device)?;
    let dy = Tensor::randn(&[s.n, s.cout, o, o], 1.0, DType::F32, &mut rng).to_device(device)?;
    let (st, pd) = ((s.stride, s.stride), (s.pad, s.pad));
    let done = |t: Tensor| -> Result<()> {
        device.synchronize()?;
        drop(t);
        Ok(())
    };
    no_grad(|| {
        let f = time_it(reps, || done(x.conv2d(&w, Some(&b), st, pd)?))?;
        let di = time_it(reps, || done(Tensor::conv2d_input_grad(&dy, &w, (s.hw, s.hw), st, pd)?))?;
        let dw = time_it(reps, || done(Tensor::conv2d_weight_grad(&x, &dy, (s.k, s.k), st, pd)?))?;
        Ok(ConvResult { shape: *s, times: [f, di, dw] })
    })
}

/// Text table of conv results.
pub fn format_conv(results: &[ConvResult]) -> String {
    let mut out = format!(
        "{:<12} {:>5} {:>9} {:>6} {:>5} | {:>9} {:>7} | {:>9} {:>7} | {:>9} {:>7} | {:>17}\n",
        "net", "batch", "cin->cout", "hw", "k/s", "fwd ms", "GFLOP/s", "dx ms", "GFLOP/s", "dw ms", "GFLOP/s", "GFLOP/cpu-s f/x/w"
    );
    for r in results {
        let s = &r.shape;
        out.push_str(&format!(
            "{:<12} {:>5} {:>9} {:>6} {:>5} | {:>9.3} {:>7.1} | {:>9.3} {:>7.1} | {:>9.3} {:>7.1} | {:>5.0} {:>5.0} {:>5.0}\n",
            s.name,
            s.n,
            format!("{}->{}", s.cin, s.cout),
            format!("{}x{}", s.hw, s.hw),
            format!("{}/{}", s.k, s.stride),
            r.times[0].median_ms,
            r.gflops(0),
            r.times[1].median_ms,
            r.gflops(1),
            r.times[2].median_ms,
            r.gflops(2),
            r.gflops_per_cpu_s(0),
            r.gflops_per_cpu_s(1),
            r.gflops_per_cpu_s(2)
        ));
    }
    // Per network: each pass over the whole set of shapes (total FLOPs / total time), the figure the
    // targets refer to (hiding sets: forward >= 200 GFLOP/s, each backward >= 150 on 2 threads).
    let mut names: Vec<&str> = Vec::new();
    for r in results {
        if !names.contains(&r.shape.name) {
            names.push(r.shape.name);
        }
    }
    for name in names {
        let set: Vec<&ConvResult> = results.iter().filter(|r| r.shape.name == name).collect();
        let flops: f64 = set.iter().map(|r| r.shape.flops()).sum();
        let rate = |i: usize| flops / (set.iter().map(|r| r.times[i].median_ms).sum::<f64>() * 1e-3) / 1e9;
        let cpu_rate = |i: usize| flops / (set.iter().map(|r| r.times[i].cpu_ms).sum::<f64>() * 1e-3) / 1e9;
        out.push_str(&format!(
            "set {name:<12}: fwd {:.1}, dx {:.1}, dw {:.1} GFLOP/s; per CPU-second {:.0} / {:.0} / {:.0}\n",
            rate(0),
            rate(1),
            rate(2),
            cpu_rate(0),
            cpu_rate(1),
            cpu_rate(2)
        ));
    }
    let total_flops: f64 = results.iter().map(|r| 3.0 * r.shape.flops()).sum();
    let total_ms: f64 = results.iter().map(|r| r.times.iter().map(|t| t.median_ms).sum::<f64>()).sum();
    let total_cpu: f64 = results.iter().map(|r| r.times.iter().map(|t| t.cpu_ms).sum::<f64>()).sum();
    out.push_str(&format!(
        "all shapes, all three passes: {:.1} ms, {:.1} GFLOP/s; {:.1} GFLOP per CPU-second (per busy core)\n",
        total_ms,
        total_flops / (total_ms * 1e-3) / 1e9,
        total_flops / (total_cpu * 1e-3) / 1e9
    ));
    out
}

/// Options of a hiding-network training step benchmark (mirrors ../shared/peers/torch_dh.py).
#[derive(Clone, Copy, Debug)]
pub struct StepBench {
    pub batch: usize,
    pub blocks: usize,
    pub size: usize,
    pub channels: usize,
    pub steps: usize,
}

/// Time whole training steps of the hiding network: hide, reveal with z ~ N(0, 1), guide + 5 * reveal +
/// low-frequency loss (sums), backward, Adam. Returns the per-step times in ms (after one warm-up step).
/// `on_step(i)` runs at the end of every step, the warm-up step 0 included (the profiler starts there).
pub fn hiding_train_steps(o: &StepBench, device: &crate::device::Device, on_step: impl FnMut(usize)) -> Result<Vec<f64>> {
    Ok(hiding_train_steps_timed(o, device, on_step)?.wall_ms)
}

/// Wall-clock and process CPU time of each timed step. CPU time is what a step costs when other
/// processes share the machine (its wall time then includes waiting for a core).
pub struct StepTimes {
    pub wall_ms: Vec<f64>,
    pub cpu_ms: Vec<f64>,
}

/// [`hiding_train_steps`] with the process CPU time of each step as well.
pub fn hiding_train_steps_timed(o: &StepBench, device: &crate::device::Device, mut on_step: impl FnMut(usize)) -> Result<StepTimes> {
    use crate::hiding::{guide_loss, low_frequency_loss, reveal_loss, HidingConfig, InvertibleHiding};
    use crate::optim::{Adam, Optimizer};
    let cfg = HidingConfig { channels: o.channels, blocks: o.blocks, ..HidingConfig::default() };
    let net = InvertibleHiding::new(cfg, 0)?;
    net.to_device(device)?;
    let mut opt = Adam::new(net.parameters(), 10f64.powf(-4.5)).betas(0.5, 0.999).eps(1e-6).weight_decay(1e-5);
    let mut rng = Rng::new(0);
    let shape = [o.batch, o.channels, o.size, o.size];
    let cover = Tensor::rand_uniform(&shape, 0.0, 1.0, DType::F32, &mut rng).to_device(device)?;
    let secret = Tensor::rand_uniform(&shape, 0.0, 1.0, DType::F32, &mut rng).to_device(device)?;
    let mut times = StepTimes { wall_ms: Vec::new(), cpu_ms: Vec::new() };
    for i in 0..=o.steps {
        let (t, c0) = (Instant::now(), process_cpu_ms());
        let h = net.hide(&cover, &secret)?;
        let z = Tensor::randn(&[o.batch, 4 * o.channels, o.size / 2, o.size / 2], 1.0, DType::F32, &mut rng).to_device(device)?;
        let (_, rev) = net.reveal(&h.stego, &z)?;
        let loss = guide_loss(&h.stego, &cover)?.add(&reveal_loss(&rev, &secret)?.mul_scalar(5.0)?)?.add(&low_frequency_loss(&h.stego, &cover)?)?;
        opt.zero_grad();
        loss.backward()?;
        opt.step()?;
        // Read the loss so asynchronous devices finish the step inside the timing.
        let v = loss.item()?;
        if !v.is_finite() {
            return Err(crate::Error::msg(format!("benchmark loss became {v}")));
        }
        if i > 0 {
            times.wall_ms.push(t.elapsed().as_secs_f64() * 1e3);
            times.cpu_ms.push(process_cpu_ms() - c0);
        }
        on_step(i);
    }
    Ok(times)
}

pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    if s.is_empty() { f64::NAN } else { s[s.len() / 2] }
}

/// FLOPs of the hiding network's convolutions in one training step (forward of hide and reveal, and both
/// gradients of each): what GFLOP/s figures for a whole step are based on.
pub fn hiding_step_conv_flops(o: &StepBench) -> f64 {
    let c4 = 4 * o.channels;
    let hw = (o.size / 2) * (o.size / 2);
    let g = 32;
    let per_subnet: usize = (0..5).map(|i| (c4 + i * g) * if i < 4 { g } else { c4 }).sum();
    let fwd = 2.0 * (o.batch * hw * 9 * per_subnet) as f64 * 3.0 * o.blocks as f64;
    // hide + reveal forward, each with input and weight gradients.
    2.0 * fwd * 3.0
}

/// Time training steps of a victim classifier (forward, cross-entropy, backward, SGD with momentum and
/// weight decay, gradient clipping at 5) on random images; per-step ms after one warm-up step.
pub fn victim_train_steps(
    arch: &str,
    batch: usize,
    chw: (usize, usize, usize),
    steps: usize,
    device: &crate::device::Device,
    on_step: impl FnMut(usize),
) -> Result<Vec<f64>> {
    victim_train_steps_width(arch, None, batch, chw, steps, device, on_step)
}

/// [`victim_train_steps`] at a given base width (None: the architecture's default).
pub fn victim_train_steps_width(
    arch: &str,
    width: Option<usize>,
    batch: usize,
    chw: (usize, usize, usize),
    steps: usize,
    device: &crate::device::Device,
    mut on_step: impl FnMut(usize),
) -> Result<Vec<f64>> {
    use crate::models::{self, Arch, ModelConfig};
    use crate::nn::functional::cross_entropy;
    use crate::optim::{clip_grad_norm, Optimizer, Sgd};
    let (c, h, w) = chw;
    let arch = Arch::parse(arch)?;
    let cfg = ModelConfig::new(arch, c, (h, w), 10).with_width(width.unwrap_or(arch.default_width()));
    let mut rng = Rng::new(0);
    let model = models::build(&cfg, &mut rng)?;
    // Parameters and batch-norm running statistics.
    model.to_device(device)?;
    model.set_training(true);
    let mut opt = Sgd::new(model.parameters(), 0.1).momentum(0.9).weight_decay(5e-4);
    let x = Tensor::rand_uniform(&[batch, c, h, w], 0.0, 1.0, DType::F32, &mut rng).to_device(device)?;
    let labels: Vec<usize> = (0..batch).map(|i| i % 10).collect();
    let mut times = Vec::new();
    for i in 0..=steps {
        let t = Instant::now();
        let loss = cross_entropy(&model.forward(&x)?, &labels, 0.0)?;
        opt.zero_grad();
        loss.backward()?;
        clip_grad_norm(&model.parameters(), 5.0)?;
        opt.step()?;
        let v = loss.item()?;
        if !v.is_finite() {
            return Err(crate::Error::msg(format!("benchmark loss became {v}")));
        }
        if i > 0 {
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        on_step(i);
    }
    Ok(times)
}

/// Peak resident memory of this process so far (VmHWM), in MiB; None where /proc is not there.
pub fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Time the forward pass of `hide` (a batch of covers and secrets through the hiding network, no
/// gradients), as `deephide hide` runs it; ms per batch after one warm-up batch.
pub fn hide_forward(o: &StepBench, device: &crate::device::Device, mut on_step: impl FnMut(usize)) -> Result<Vec<f64>> {
    use crate::hiding::{HidingConfig, InvertibleHiding};
    let cfg = HidingConfig { channels: o.channels, blocks: o.blocks, ..HidingConfig::default() };
    let net = InvertibleHiding::new(cfg, 0)?;
    for p in net.parameters() {
        p.move_to_device_(device)?;
    }
    let mut rng = Rng::new(1);
    let shape = [o.batch, o.channels, o.size, o.size];
    let cover = Tensor::rand_uniform(&shape, 0.0, 1.0, DType::F32, &mut rng).to_device(device)?;
    let secret = Tensor::rand_uniform(&shape, 0.0, 1.0, DType::F32, &mut rng).to_device(device)?;
    let mut times = Vec::new();
    for i in 0..=o.steps {
        let t = Instant::now();
        let h = crate::no_grad(|| net.hide(&cover, &secret))?;
        // The published images are read back, as hide does.
        let v = h.stego.to_vec_f32()?;
        if v.iter().any(|x| !x.is_finite()) {
            return Err(crate::Error::msg("benchmark stego became non-finite"));
        }
        if i > 0 {
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        on_step(i);
    }
    Ok(times)
}

//! A short training run of a two-block hiding network on wgpu follows the CPU's loss curve.
//!
//! Both runs start from the same weights and see the same batches and the same z noise; each step is
//! hide, reveal, guide + 5 * reveal + low-frequency loss, backward, Adam (the training objective of
//! `deephide train`). The devices round differently (f32 sums in another order, the device's exp), and
//! Adam amplifies tiny differences of near-zero gradients, so the curves are compared with a relative
//! tolerance of 0.1% per step: far below the change of the loss over the run, which is also asserted.

#![cfg(feature = "wgpu")]

use deephide::hiding::{guide_loss, low_frequency_loss, reveal_loss, HidingConfig, InvertibleHiding};
use deephide::optim::{Adam, Optimizer};
use deephide::{DType, Device, Rng, Tensor};

const STEPS: usize = 12;
const RTOL: f64 = 1e-3;

fn losses(device: &Device) -> Vec<f64> {
    let cfg = HidingConfig { channels: 1, blocks: 2, growth: 8, clamp: 2.0, slope: 0.01 };
    let net = InvertibleHiding::new(cfg, 7).unwrap();
    net.to_device(device).unwrap();
    let mut opt = Adam::new(net.parameters(), 1e-3).betas(0.5, 0.999).eps(1e-6);
    let mut rng = Rng::new(3);
    let mut out = Vec::new();
    for _ in 0..STEPS {
        let shape = [4, 1, 16, 16];
        let cover = Tensor::rand_uniform(&shape, 0.0, 1.0, DType::F32, &mut rng).to_device(device).unwrap();
        let secret = Tensor::rand_uniform(&shape, 0.0, 1.0, DType::F32, &mut rng).to_device(device).unwrap();
        let z = Tensor::randn(&[4, 4, 8, 8], 1.0, DType::F32, &mut rng).to_device(device).unwrap();
        let h = net.hide(&cover, &secret).unwrap();
        let (_, rev) = net.reveal(&h.stego, &z).unwrap();
        let loss = guide_loss(&h.stego, &cover)
            .unwrap()
            .add(&reveal_loss(&rev, &secret).unwrap().mul_scalar(5.0).unwrap())
            .unwrap()
            .add(&low_frequency_loss(&h.stego, &cover).unwrap())
            .unwrap();
        opt.zero_grad();
        loss.backward().unwrap();
        opt.step().unwrap();
        for p in net.parameters() {
            assert_eq!(p.device(), *device, "parameters must stay on the training device");
        }
        out.push(loss.item().unwrap());
    }
    out
}

#[test]
fn two_block_hiding_training_follows_cpu() {
    let dev = match Device::wgpu() {
        Ok(d) => d,
        Err(e) => return println!("skipped: {e}"),
    };
    let cpu = losses(&Device::Cpu);
    let gpu = losses(&dev);
    println!("cpu  {cpu:.4?}\nwgpu {gpu:.4?}");
    for (k, (c, g)) in cpu.iter().zip(&gpu).enumerate() {
        assert!((c - g).abs() <= RTOL * c.abs(), "step {k}: cpu loss {c}, wgpu loss {g} (rtol {RTOL})");
    }
    // The run trains: the loss falls by much more than the tolerance.
    assert!(cpu[STEPS - 1] < cpu[0] * 0.9, "the loss did not fall: {cpu:?}");
}

//! Sample-wise error-minimising refinement (`hide --em-epochs`): stays inside the budget around the clean
//! images, keeps the labels, and really makes the data easier for the surrogate than the same passes
//! without moving the images.

use deephide::data::Dataset;
use deephide::hiding::{em_refine, EmRefineOptions};
use deephide::{Device, Rng};

/// Random 8x8 gray images with random labels over 4 classes: nothing to learn but memorisation.
fn random_set(n: usize, seed: u64) -> Dataset {
    let mut rng = Rng::new(seed);
    let images: Vec<u8> = (0..n * 64).map(|_| (rng.uniform() * 255.0) as u8).collect();
    let labels: Vec<usize> = (0..n).map(|_| rng.below(4)).collect();
    Dataset::new("random", images, labels, (1, 8, 8), 4).unwrap()
}

fn opts(step_size: f64) -> EmRefineOptions {
    EmRefineOptions { eps: 16.0 / 255.0, epochs: 4, steps: 4, step_size, width: 4, lr: 0.05, batch: 32, stop_acc: 1.0, ..Default::default() }
}

#[test]
fn refinement_stays_in_budget_and_makes_random_labels_easy() {
    let clean = random_set(256, 3);
    let dev = Device::Cpu;
    let (refined, rep) = em_refine(&clean, &clean, &opts(2.0 / 255.0), &dev, |_, _, _| {}).unwrap();
    assert_eq!(refined.labels, clean.labels);
    assert_eq!(rep.passes.len(), 4);
    assert!(!rep.stopped_early);
    let linf = refined.images.iter().zip(&clean.images).map(|(a, b)| (*a as i32 - *b as i32).abs()).max().unwrap();
    assert!(linf <= 16, "L-inf {linf}/255 over the 16/255 budget");
    assert!(linf >= 8, "the refinement barely moved the images (L-inf {linf}/255)");
    // Control: the same surrogate passes with a step too small to change a u8 level.
    let (still, ctrl) = em_refine(&clean, &clean, &opts(1e-7), &dev, |_, _, _| {}).unwrap();
    assert_eq!(still.images, clean.images);
    let (acc, ctrl_acc) = (rep.passes[3].acc, ctrl.passes[3].acc);
    assert!(acc > ctrl_acc + 0.15, "error-minimising noise should make random labels easier: {acc} vs control {ctrl_acc}");
    assert!(rep.passes[3].ce < ctrl.passes[3].ce, "{:?} vs {:?}", rep.passes, ctrl.passes);
    assert!(rep.passes[3].moved > rep.passes[0].moved, "{:?}", rep.passes);
}

#[test]
fn radius_keeps_the_refinement_near_the_hidden_images() {
    let clean = random_set(128, 7);
    // "Hidden" images: the clean ones shifted by +-4 levels, inside the 16/255 budget.
    let mut hidden = clean.clone();
    for (i, v) in hidden.images.iter_mut().enumerate() {
        *v = if i % 2 == 0 { v.saturating_add(4) } else { v.saturating_sub(4) };
    }
    let o = EmRefineOptions { radius: 2.0 / 255.0, ..opts(2.0 / 255.0) };
    let (refined, _) = em_refine(&clean, &hidden, &o, &Device::Cpu, |_, _, _| {}).unwrap();
    let dist = |a: &[u8], b: &[u8]| a.iter().zip(b).map(|(x, y)| (*x as i32 - *y as i32).abs()).max().unwrap();
    assert!(dist(&refined.images, &hidden.images) <= 2, "moved more than the radius from the hidden images");
    assert!(dist(&refined.images, &hidden.images) >= 1, "did not move at all");
    assert!(dist(&refined.images, &clean.images) <= 16);
    assert!(o.describe().contains("within 2.00/255 of the hidden image"), "{}", o.describe());
}

#[test]
fn classwise_refinement_gives_every_image_of_a_class_the_same_offset() {
    // Mid-grey random images, so no [0, 1] clip breaks the sharing.
    let mut rng = Rng::new(11);
    let n = 128;
    let images: Vec<u8> = (0..n * 64).map(|_| 64 + (rng.uniform() * 128.0) as u8).collect();
    let labels: Vec<usize> = (0..n).map(|_| rng.below(4)).collect();
    let clean = Dataset::new("grey", images, labels, (1, 8, 8), 4).unwrap();
    let o = EmRefineOptions { classwise: true, ..opts(2.0 / 255.0) };
    let (refined, rep) = em_refine(&clean, &clean, &o, &Device::Cpu, |_, _, _| {}).unwrap();
    let offset = |i: usize| -> Vec<i32> { refined.image(i).iter().zip(clean.image(i)).map(|(a, b)| *a as i32 - *b as i32).collect() };
    for y in 0..4 {
        let members: Vec<usize> = (0..n).filter(|&i| clean.labels[i] == y).collect();
        let first = offset(members[0]);
        assert!(first.iter().any(|&d| d != 0), "class {y} did not move");
        assert!(first.iter().all(|d| d.abs() <= 16));
        for &i in &members[1..] {
            assert_eq!(offset(i), first, "image {i} of class {y} has its own offset");
        }
    }
    assert_ne!(offset(clean.labels.iter().position(|&l| l == 0).unwrap()), offset(clean.labels.iter().position(|&l| l == 1).unwrap()));
    // A class-wise code is the easiest shortcut there is: random labels become learnable.
    assert!(rep.passes[3].acc > 0.6, "{:?}", rep.passes);
    assert!(o.describe().starts_with("class-wise"), "{}", o.describe());
}

#[test]
fn refinement_stops_at_the_target_accuracy_and_rejects_bad_input() {
    let clean = random_set(64, 5);
    let dev = Device::Cpu;
    let o = EmRefineOptions { stop_acc: 0.0, ..opts(1.0 / 255.0) };
    let (_, rep) = em_refine(&clean, &clean, &o, &dev, |_, _, _| {}).unwrap();
    assert_eq!(rep.passes.len(), 1);
    assert!(rep.stopped_early);
    assert!(rep.to_json(&o).contains("\"stopped_early\": true"));
    // Hidden images of another data set (other labels) are refused.
    let other = random_set(64, 6);
    let e = em_refine(&clean, &other, &o, &dev, |_, _, _| {}).unwrap_err().to_string();
    assert!(e.contains("do not match"), "{e}");
    for bad in [EmRefineOptions { step_size: 0.0, ..o.clone() }, EmRefineOptions { lr: f64::NAN, ..o.clone() }, EmRefineOptions { eps: 0.0, ..o.clone() }, EmRefineOptions { radius: -1.0, ..o.clone() }, EmRefineOptions { steps: 0, ..o.clone() }] {
        assert!(em_refine(&clean, &clean, &bad, &dev, |_, _, _| {}).is_err(), "{bad:?}");
    }
}

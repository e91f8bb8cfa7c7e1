//! Convolution throughput at the hiding network's and ResNet-18's shapes (forward, input gradient, weight
//! gradient), median ms and GFLOP/s: `cargo bench --bench conv` (same as `deephide bench conv`).

fn main() -> deephide::Result<()> {
    let mut results = Vec::new();
    for s in deephide::bench::conv_shapes(32) {
        results.push(deephide::bench::bench_conv(&s, 7, &deephide::Device::Cpu)?);
    }
    println!("cpu: {} threads, {} kernels", rayon::current_num_threads(), deephide::cpu::SimdLevel::detect().name());
    print!("{}", deephide::bench::format_conv(&results));
    Ok(())
}

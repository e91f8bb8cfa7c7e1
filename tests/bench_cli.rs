//! `deephide bench victim` and `bench hide` print the figures the PyTorch twins print (img_per_s) and the
//! peak memory, and refuse impossible settings.

#[path = "common/cli.rs"]
mod cli;
use cli::{bin, text};

fn value(out: &str, key: &str) -> f64 {
    let line = out.lines().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("no `{key}` in: {out}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap_or_else(|_| panic!("`{line}`"))
}

#[test]
fn victim_and_hide_benchmarks_report_throughput_and_peak_memory() {
    for args in [
        vec!["bench", "victim", "--model", "small-cnn", "--width", "8", "--batch", "16", "--steps", "2"],
        vec!["bench", "victim", "--model", "resnet18", "--width", "4", "--batch", "8", "--steps", "1"],
        vec!["bench", "hide", "--blocks", "2", "--batch", "4", "--steps", "2"],
    ] {
        let o = bin(&args);
        let t = text(&o);
        assert!(o.status.success(), "{args:?}: {t}");
        assert!(value(&t, "img_per_s") > 0.0, "{t}");
        assert!(value(&t, "peak_rss_mib") > 1.0, "{t}");
    }
    let o = bin(&["bench", "victim", "--batch", "1"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = bin(&["bench", "hide", "--size", "27"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

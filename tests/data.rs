//! Data loaders: round trips through the writers, the bundled subset, the CIFAR-10 sample, and malformed
//! files that must be rejected with messages naming the file and the place.

use std::fs;
use std::path::{Path, PathBuf};

use deephide::data::{self, balanced_subset, bundled, cifar, folder, idx, DataSpec, Dataset, Split};
use deephide::Rng;

/// A fresh, empty directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let k = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("deephide-data-{tag}-{}-{k}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A small random data set.
fn random_ds(n: usize, chw: (usize, usize, usize), classes: usize, seed: u64) -> Dataset {
    let mut rng = Rng::new(seed);
    let per = chw.0 * chw.1 * chw.2;
    let images: Vec<u8> = (0..n * per).map(|_| rng.below(256) as u8).collect();
    let labels: Vec<usize> = (0..n).map(|i| i % classes).collect();
    Dataset::new("random", images, labels, chw, classes).unwrap()
}

fn err_of<T: std::fmt::Debug>(r: deephide::Result<T>) -> String {
    r.expect_err("expected an error").to_string()
}

fn assert_contains(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "error message `{msg}` should contain `{p}`");
    }
}

fn per_class(labels: &[usize], classes: usize) -> Vec<usize> {
    let mut c = vec![0; classes];
    for &l in labels {
        c[l] += 1;
    }
    c
}

// ------------------------------------------------------------------------------------------------ bundled

#[test]
fn bundled_subset_is_balanced_fashion_mnist() {
    let tr = data::load("default", Split::Train).unwrap();
    let te = data::load("default", Split::Test).unwrap();
    assert_eq!((tr.len(), te.len()), (6000, 1000));
    for d in [&tr, &te] {
        assert_eq!((d.channels, d.height, d.width, d.classes), (1, 28, 28, 10));
    }
    assert_eq!(per_class(&tr.labels, 10), vec![600; 10]);
    assert_eq!(per_class(&te.labels, 10), vec![100; 10]);
    // Real images: not blank, a plausible mean intensity (Fashion-MNIST's is about 73/255).
    let mean = tr.images.iter().map(|&b| b as f64).sum::<f64>() / tr.images.len() as f64;
    assert!((50.0..100.0).contains(&mean), "mean pixel {mean}");
    // The bundled files in the source tree are the ones compiled in.
    let disk = idx::load_dir(Path::new(bundled::SUBSET_DIR), Split::Train).unwrap();
    assert_eq!(disk.images, tr.images);
    assert_eq!(disk.labels, tr.labels);
    assert!(Path::new(bundled::SUBSET_DIR).join("LICENSE").is_file());
    let total: u64 = fs::read_dir(bundled::SUBSET_DIR).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    assert!(total < 10 << 20, "bundled subset is {total} bytes, at most 10 MB allowed");
}

#[test]
fn bundled_subset_is_the_first_images_of_the_full_set() {
    if !bundled::full_available() {
        eprintln!("skipped: full Fashion-MNIST not installed at {} (apt-get install -y dataset-fashion-mnist)", bundled::FULL_DIR);
        return;
    }
    for (split, n, per) in [(Split::Train, 60000, 600), (Split::Test, 10000, 100)] {
        let full = data::load("fashion-mnist", split).unwrap();
        assert_eq!(full.len(), n);
        assert_eq!(per_class(&full.labels, 10), vec![n / 10; 10]);
        let sub = data::load("default", split).unwrap();
        let raw: Vec<u8> = full.labels.iter().map(|&l| l as u8).collect();
        let keep = bundled::first_per_class(&raw, 10, per).unwrap();
        assert_eq!(full.subset(&keep).images, sub.images);
    }
}

/// `deephide make-subset` (the tool that made the bundled subset) reproduces it from the full set.
#[test]
fn make_subset_command_reproduces_the_bundled_subset() {
    if !bundled::full_available() {
        eprintln!("skipped: full Fashion-MNIST not installed at {} (apt-get install -y dataset-fashion-mnist)", bundled::FULL_DIR);
        return;
    }
    let dir = TempDir::new("make-subset");
    let st = std::process::Command::new(env!("CARGO_BIN_EXE_deephide"))
        .args(["make-subset", "--out"])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(st.success());
    for split in [Split::Train, Split::Test] {
        let made = idx::load_dir(dir.path(), split).unwrap();
        let shipped = idx::load_dir(Path::new(bundled::SUBSET_DIR), split).unwrap();
        assert_eq!(made.labels, shipped.labels);
        assert_eq!(made.images, shipped.images);
    }
}

#[test]
fn fashion_mnist_spec_says_how_to_install_when_absent() {
    if bundled::full_available() {
        return;
    }
    let e = err_of(data::load("fashion-mnist", Split::Train));
    assert_contains(&e, &["dataset-fashion-mnist", "default"]);
}

// ------------------------------------------------------------------------------------------------ IDX

#[test]
fn idx_round_trip_gray_and_colour() {
    let dir = TempDir::new("idx-rt");
    for (chw, classes) in [((1, 28, 28), 10), ((3, 8, 6), 13)] {
        let tr = random_ds(37, chw, classes, 1);
        let te = random_ds(11, chw, classes, 2);
        let spec = format!("idx:{}", dir.path().display());
        data::save(&spec, &tr, Split::Train).unwrap();
        data::save(&spec, &te, Split::Test).unwrap();
        let tr2 = data::load(&spec, Split::Train).unwrap();
        let te2 = data::load(&spec, Split::Test).unwrap();
        for (a, b) in [(&tr, &tr2), (&te, &te2)] {
            assert_eq!(a.images, b.images);
            assert_eq!(a.labels, b.labels);
            assert_eq!((a.channels, a.height, a.width, a.classes), (b.channels, b.height, b.width, b.classes));
        }
    }
    // Overwriting a colour set with a gray one leaves only the gray files.
    let names: Vec<String> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
    assert!(!names.iter().any(|n| n.ends_with(".tmp")), "temporary files left: {names:?}");
}

#[test]
fn idx_reads_raw_files_and_mnist_spellings() {
    let dir = TempDir::new("idx-raw");
    let ds = random_ds(5, (1, 4, 3), 10, 3);
    let img = idx::encode_idx(&[5, 4, 3], &ds.images).unwrap();
    let lab = idx::encode_idx(&[5], &ds.labels.iter().map(|&l| l as u8).collect::<Vec<_>>()).unwrap();
    fs::write(dir.path().join("t10k-images.idx3-ubyte"), &img).unwrap();
    fs::write(dir.path().join("t10k-labels.idx1-ubyte"), &lab).unwrap();
    let back = idx::load_dir(dir.path(), Split::Test).unwrap();
    assert_eq!(back.images, ds.images);
    assert_eq!(back.labels, ds.labels);
    let e = err_of(idx::load_dir(dir.path(), Split::Train));
    assert_contains(&e, &["train images", "train-images-idx3-ubyte"]);
}

fn write_idx_pair(dir: &Path, images: &[u8], labels: &[u8]) {
    fs::write(dir.join("train-images-idx3-ubyte"), images).unwrap();
    fs::write(dir.join("train-labels-idx1-ubyte"), labels).unwrap();
}

#[test]
fn idx_rejects_malformed_files() {
    let dir = TempDir::new("idx-bad");
    let d = dir.path();
    let good_img = idx::encode_idx(&[3, 2, 2], &[7u8; 12]).unwrap();
    let good_lab = idx::encode_idx(&[3], &[0, 1, 2]).unwrap();
    let img_path = d.join("train-images-idx3-ubyte").display().to_string();
    let lab_path = d.join("train-labels-idx1-ubyte").display().to_string();

    write_idx_pair(d, &good_img, &good_lab);
    assert_eq!(idx::load_dir(d, Split::Train).unwrap().len(), 3);

    // Bad magic.
    let mut bad = good_img.clone();
    bad[0] = 0x12;
    write_idx_pair(d, &bad, &good_lab);
    assert_contains(&err_of(idx::load_dir(d, Split::Train)), &[&img_path, "bad magic"]);

    // Unsupported type code.
    let mut bad = good_img.clone();
    bad[2] = 0x0D;
    write_idx_pair(d, &bad, &good_lab);
    assert_contains(&err_of(idx::load_dir(d, Split::Train)), &[&img_path, "type code 0x0d"]);

    // Truncated data: the last image is cut off.
    write_idx_pair(d, &good_img[..good_img.len() - 2], &good_lab);
    assert_contains(&err_of(idx::load_dir(d, Split::Train)), &[&img_path, "truncated", "record 2", "byte offset 24"]);

    // Truncated header.
    write_idx_pair(d, &good_img[..9], &good_lab);
    assert_contains(&err_of(idx::load_dir(d, Split::Train)), &[&img_path, "truncated IDX header"]);

    // Trailing bytes.
    let mut bad = good_img.clone();
    bad.extend_from_slice(&[1, 2, 3]);
    write_idx_pair(d, &bad, &good_lab);
    assert_contains(&err_of(idx::load_dir(d, Split::Train)), &[&img_path, "3 unexpected trailing bytes", "byte offset 28"]);

    // Image and label counts disagree.
    write_idx_pair(d, &good_img, &idx::encode_idx(&[2], &[0, 1]).unwrap());
    assert_contains(&err_of(idx::load_dir(d, Split::Train)), &[&lab_path, "2 labels", "3 images"]);

    // Label out of range (10 classes without classes.txt): record 1, byte offset 8 + 1.
    write_idx_pair(d, &good_img, &idx::encode_idx(&[3], &[0, 10, 2]).unwrap());
    assert_contains(&err_of(idx::load_dir(d, Split::Train)), &[&lab_path, "label 10 of record 1", "byte offset 9", "10 classes"]);
    // ... which classes.txt can declare.
    fs::write(d.join("classes.txt"), (0..11).map(|k| format!("c{k}\n")).collect::<String>()).unwrap();
    assert_eq!(idx::load_dir(d, Split::Train).unwrap().classes, 11);
    fs::remove_file(d.join("classes.txt")).unwrap();

    // Wrong number of dimensions for images.
    write_idx_pair(d, &idx::encode_idx(&[3, 4], &[0u8; 12]).unwrap(), &good_lab);
    assert_contains(&err_of(idx::load_dir(d, Split::Train)), &[&img_path, "3 (N, H, W) or 4 (N, C, H, W) dimensions"]);

    // Corrupt gzip.
    fs::remove_file(d.join("train-images-idx3-ubyte")).unwrap();
    fs::remove_file(d.join("train-labels-idx1-ubyte")).unwrap();
    let gz_path = d.join("train-images-idx3-ubyte.gz");
    fs::write(&gz_path, [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3, 4, 5]).unwrap();
    fs::write(d.join("train-labels-idx1-ubyte"), &good_lab).unwrap();
    assert_contains(&err_of(idx::load_dir(d, Split::Train)), &[&gz_path.display().to_string(), "corrupt gzip"]);

    // Not a directory.
    assert_contains(&err_of(data::load("idx:/nonexistent/deephide-nowhere", Split::Train)), &["/nonexistent/deephide-nowhere", "not a directory"]);
}

// ------------------------------------------------------------------------------------------------ CIFAR

const SAMPLE_LABELS: [usize; 20] = [3, 8, 8, 0, 6, 6, 1, 6, 3, 1, 0, 9, 5, 7, 9, 8, 5, 7, 8, 6];

/// ../shared/data/cifar10-test-sample20.bin beside the repository (as CI has it), or the workplace copy.
fn cifar_sample() -> Option<PathBuf> {
    let name = "cifar10-test-sample20.bin";
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidates =
        [here.join("../shared/data").join(name), here.join("../../shared/data").join(name), PathBuf::from("/work/shared/data").join(name)];
    let found = candidates.into_iter().find(|p| p.is_file());
    if found.is_none() {
        eprintln!("skipped: {name} not found beside the repository (../shared/data)");
    }
    found
}

#[test]
fn cifar10_sample_loads_as_file_and_as_directory() {
    let Some(sample) = cifar_sample() else { return };
    let ds = data::load(&format!("cifar10:{}", sample.display()), Split::Test).unwrap();
    assert_eq!(ds.len(), 20);
    assert_eq!(ds.labels, SAMPLE_LABELS);
    assert_eq!((ds.channels, ds.height, ds.width, ds.classes), (3, 32, 32, 10));
    // Planes are R, G, B: real photos have distinct channels.
    assert_ne!(&ds.image(0)[..1024], &ds.image(0)[1024..2048]);

    let dir = TempDir::new("cifar10");
    let root = dir.path().join("cifar-10-batches-bin");
    fs::create_dir_all(&root).unwrap();
    fs::copy(&sample, root.join("test_batch.bin")).unwrap();
    // The directory holding the archive's folder works as well as the folder itself.
    let t1 = data::load(&format!("cifar10:{}", dir.path().display()), Split::Test).unwrap();
    let t2 = data::load(&format!("cifar10:{}", root.display()), Split::Test).unwrap();
    assert_eq!(t1.images, ds.images);
    assert_eq!(t2.labels, ds.labels);
    // Training files absent: the message names them.
    let e = err_of(data::load(&format!("cifar10:{}", root.display()), Split::Train));
    assert_contains(&e, &["data_batch_1.bin", "data_batch_5.bin", "missing train"]);
    // Five training batches: concatenated in order.
    for i in 1..=5 {
        fs::copy(&sample, root.join(format!("data_batch_{i}.bin"))).unwrap();
    }
    let tr = data::load(&format!("cifar10:{}", root.display()), Split::Train).unwrap();
    assert_eq!(tr.len(), 100);
    assert_eq!(&tr.labels[80..], &SAMPLE_LABELS);
}

#[test]
fn cifar_round_trip_and_cifar100_fine_labels() {
    let dir = TempDir::new("cifar100");
    let ds = random_ds(9, (3, 32, 32), 100, 4);
    let ds = Dataset::new("r", ds.images, (0..9).map(|i| i * 11).collect(), (3, 32, 32), 100).unwrap();
    let mut bytes = cifar::encode_records(&ds, cifar::Variant::Cifar100).unwrap();
    // Put real coarse labels in: they must be ignored (fine labels are used).
    for k in 0..9 {
        bytes[k * 3074] = (k * 2) as u8;
    }
    fs::write(dir.path().join("train.bin"), &bytes).unwrap();
    fs::write(dir.path().join("test.bin"), &bytes[..3074 * 2]).unwrap();
    let tr = data::load(&format!("cifar100:{}", dir.path().display()), Split::Train).unwrap();
    assert_eq!(tr.labels, ds.labels);
    assert_eq!(tr.images, ds.images);
    assert_eq!(tr.classes, 100);
    let te = data::load(&format!("cifar100:{}", dir.path().display()), Split::Test).unwrap();
    assert_eq!(te.len(), 2);
}

#[test]
fn cifar_rejects_malformed_files() {
    let dir = TempDir::new("cifar-bad");
    let d = dir.path();
    let p = d.join("test_batch.bin");
    let ps = p.display().to_string();
    let ds = random_ds(3, (3, 32, 32), 10, 5);
    let good = cifar::encode_records(&ds, cifar::Variant::Cifar10).unwrap();
    let spec = format!("cifar10:{}", d.display());

    fs::write(&p, &good[..good.len() - 100]).unwrap();
    assert_contains(&err_of(data::load(&spec, Split::Test)), &[&ps, "truncated record 2", "byte offset 6146", "3073-byte"]);

    let mut bad = good.clone();
    bad[3073] = 10;
    fs::write(&p, &bad).unwrap();
    assert_contains(&err_of(data::load(&spec, Split::Test)), &[&ps, "record 1", "byte offset 3073", "label 10 is out of range 0..9"]);

    fs::write(&p, []).unwrap();
    assert_contains(&err_of(data::load(&spec, Split::Test)), &[&ps, "empty file"]);

    // CIFAR-100: fine label out of range, and coarse label out of range.
    let p100 = d.join("test.bin");
    let ps100 = p100.display().to_string();
    let mut r = vec![0u8; 2 * 3074];
    r[3074] = 3;
    r[3075] = 100;
    fs::write(&p100, &r).unwrap();
    let spec100 = format!("cifar100:{}", d.display());
    assert_contains(&err_of(data::load(&spec100, Split::Test)), &[&ps100, "record 1", "fine label 100", "0..99"]);
    r[3074] = 20;
    r[3075] = 5;
    fs::write(&p100, &r).unwrap();
    assert_contains(&err_of(data::load(&spec100, Split::Test)), &[&ps100, "record 1", "coarse label 20"]);
}

// ------------------------------------------------------------------------------------------------ folders

#[test]
fn folder_round_trip_png() {
    let dir = TempDir::new("folder-rt");
    for (chw, classes) in [((1, 5, 7), 3), ((3, 4, 4), 12)] {
        let tr = random_ds(20, chw, classes, 6);
        let te = random_ds(7, chw, classes, 7);
        let spec = format!("folder:{}", dir.path().display());
        data::save(&spec, &tr, Split::Train).unwrap();
        data::save(&spec, &te, Split::Test).unwrap();
        let tr2 = data::load(&spec, Split::Train).unwrap();
        let te2 = data::load(&spec, Split::Test).unwrap();
        assert_eq!(tr2.classes, classes);
        // Images come back grouped by class folder, in index order within a class.
        for (a, b) in [(&tr, &tr2), (&te, &te2)] {
            let mut order: Vec<usize> = (0..a.len()).collect();
            order.sort_by_key(|&i| (a.labels[i], i));
            let sorted = a.subset(&order);
            assert_eq!(sorted.images, b.images);
            assert_eq!(sorted.labels, b.labels);
        }
    }
    assert_eq!(folder::class_folder_name(3, 12), "03");
}

const JPEG_RGB: &str = "ffd8ffe000104a46494600010100000100010000ffdb00430001010101010101010101010101010101010101010101010101010101010101010101010101010101010101010101010101010101010101010101010101010101ffdb00430101010101010101010101010101010101010101010101010101010101010101010101010101010101010101010101010101010101010101010101010101010101ffc00011080004000603012200021101031101ffc4001f0000010501010101010100000000000000000102030405060708090a0bffc400b5100002010303020403050504040000017d01020300041105122131410613516107227114328191a1082342b1c11552d1f02433627282090a161718191a25262728292a3435363738393a434445464748494a535455565758595a636465666768696a737475767778797a838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9faffc4001f0100030101010101010101010000000000000102030405060708090a0bffc400b51100020102040403040705040400010277000102031104052131061241510761711322328108144291a1b1c109233352f0156272d10a162434e125f11718191a262728292a35363738393a434445464748494a535455565758595a636465666768696a737475767778797a82838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae2e3e4e5e6e7e8e9eaf2f3f4f5f6f7f8f9faffda000c03010002110311003f00d9fd953fe09fff00b311f0cb67c0e0ff00a1c5ff002d2d3fbf1ffd38514515f01e2071b719ff00adf9dffc65dc4ffef4ff00e67f9aff002c7fea2cfdc7e87fe237885ff12e9e187fc677c67ff221a5ff00354677ff003f17fd4779bfbd9fffd9";
const JPEG_GRAY: &str = "ffd8ffe000104a46494600010100000100010000ffdb00430001010101010101010101010101010101010101010101010101010101010101010101010101010101010101010101010101010101010101010101010101010101ffc0000b080004000601011100ffc4001f0000010501010101010100000000000000000102030405060708090a0bffc400b5100002010303020403050504040000017d01020300041105122131410613516107227114328191a1082342b1c11552d1f02433627282090a161718191a25262728292a3435363738393a434445464748494a535455565758595a636465666768696a737475767778797a838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9faffda0008010100003f00f56ff8229fecdbf09bfe1504bff14fff00cc06cff8e1ff009ef69ff4ed5fffd9";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

#[test]
fn folder_reads_jpeg_and_promotes_gray_to_colour() {
    // 6x4 images made with cjpeg -quality 100: gray = 30x + 20y; colour = (40x, 60y, 128), 4:2:0 chroma.
    let dir = TempDir::new("folder-jpeg");
    let cat = dir.path().join("cat");
    let dog = dir.path().join("dog");
    fs::create_dir_all(&cat).unwrap();
    fs::create_dir_all(&dog).unwrap();
    fs::write(cat.join("a.JPG"), unhex(JPEG_GRAY)).unwrap();
    fs::write(cat.join("notes.txt"), "not an image").unwrap();
    let g = folder::decode_image(&cat.join("a.JPG")).unwrap();
    assert_eq!((g.channels, g.height, g.width), (1, 4, 6));
    for y in 0..4 {
        for x in 0..6 {
            let want = (30 * x + 20 * y) as i32;
            assert!((g.chw[y * 6 + x] as i32 - want).abs() <= 3, "gray pixel ({y},{x}) = {} want {want}", g.chw[y * 6 + x]);
        }
    }
    fs::write(dog.join("b.jpeg"), unhex(JPEG_RGB)).unwrap();
    let c = folder::decode_image(&dog.join("b.jpeg")).unwrap();
    assert_eq!((c.channels, c.height, c.width), (3, 4, 6));
    let blue_mean = c.chw[48..72].iter().map(|&v| v as f64).sum::<f64>() / 24.0;
    assert!((blue_mean - 128.0).abs() < 8.0, "blue plane mean {blue_mean}");
    // No train/ and test/: the class folders serve both splits; gray is promoted to 3 channels.
    let ds = data::load(&format!("folder:{}", dir.path().display()), Split::Test).unwrap();
    assert_eq!((ds.len(), ds.channels, ds.classes), (2, 3, 2));
    assert_eq!(ds.labels, vec![0, 1]);
    assert_eq!(&ds.image(0)[..24], &ds.image(0)[24..48]);
}

#[test]
fn folder_rejects_bad_images() {
    let dir = TempDir::new("folder-bad");
    let root = dir.path();
    let spec = format!("folder:{}", root.display());
    let a = root.join("train/a");
    fs::create_dir_all(&a).unwrap();
    fs::create_dir_all(root.join("test/a")).unwrap();
    fs::write(a.join("0.png"), folder::encode_png(&[1u8; 12], 1, 3, 4).unwrap()).unwrap();
    fs::write(a.join("1.png"), folder::encode_png(&[1u8; 15], 1, 3, 5).unwrap()).unwrap();
    let e = err_of(data::load(&spec, Split::Train));
    assert_contains(&e, &[&a.join("1.png").display().to_string(), "5x3", "same size"]);

    fs::write(a.join("1.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let e = err_of(data::load(&spec, Split::Train));
    assert_contains(&e, &[&a.join("1.png").display().to_string(), "not a readable PNG"]);
    fs::remove_file(a.join("1.png")).unwrap();

    let t = root.join("test/zebra");
    fs::create_dir_all(&t).unwrap();
    fs::write(t.join("0.png"), folder::encode_png(&[1u8; 12], 1, 3, 4).unwrap()).unwrap();
    let e = err_of(data::load(&spec, Split::Test));
    assert_contains(&e, &["zebra", "not a class of the training folder"]);

    let e = err_of(data::load(&format!("folder:{}", root.join("test/a").display()), Split::Train));
    assert_contains(&e, &["no class subdirectories"]);
}

// ------------------------------------------------------------------------------------------------ SPECs

#[test]
fn bad_specs_are_clear_errors() {
    assert_contains(&err_of(DataSpec::parse("mnist")), &["unknown data SPEC `mnist`", "idx:DIR"]);
    assert_contains(&err_of(DataSpec::parse("tfrecord:/x")), &["unknown data format `tfrecord`"]);
    assert_contains(&err_of(DataSpec::parse("idx:")), &["no path"]);
    assert_eq!(DataSpec::parse("folder:/a:b").unwrap(), DataSpec::Folder(PathBuf::from("/a:b")));
    assert_eq!(DataSpec::parse("cifar100:x").unwrap().to_string(), "cifar100:x");
    assert_contains(&err_of(DataSpec::Default.save(&random_ds(2, (1, 2, 2), 2, 0), Split::Train)), &["idx:DIR and folder:DIR"]);
    assert_contains(&err_of(data::load("cifar10:/nonexistent/deephide-c10", Split::Test)), &["/nonexistent/deephide-c10", "no such directory"]);
}

#[test]
fn balanced_subset_takes_equal_shares() {
    let ds = data::load("default", Split::Train).unwrap();
    let s = balanced_subset(&ds, Some(250), &mut Rng::new(3));
    assert_eq!(s.len(), 250);
    assert_eq!(per_class(&s.labels, 10), vec![25; 10]);
    let s2 = balanced_subset(&ds, Some(250), &mut Rng::new(3));
    assert_eq!(s.images, s2.images, "same seed, same subset");
    assert_eq!(balanced_subset(&ds, None, &mut Rng::new(0)).len(), 6000);
}

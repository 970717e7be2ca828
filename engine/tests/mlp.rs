//! End to end: a 2-layer MLP trained by the engine (forward, backward, Adam, all on the GPU)
//! separates two half-moons with ≥ 98 % test accuracy from a fixed seed.

mod common;

#[test]
fn mlp_learns_two_moons() {
    let dev = common::device();
    let report = mtdiff_engine::demo::train_mlp(&dev, 32, 400, 1, |_, _| {}).unwrap();
    assert!(report.test_accuracy >= 0.98, "{report:?}");
    assert!(report.final_loss < 0.1, "{report:?}");
}

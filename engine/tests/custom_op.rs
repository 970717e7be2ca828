//! The public custom-op API: the example op defined outside the engine (`examples/custom_op.rs`)
//! matches its CPU reference and finite differences; it batches and caches like engine ops; and
//! a kernel whose WGSL disagrees with its Rust declaration, or a misused op, is a clear error.

mod common;
#[allow(dead_code)]
#[path = "../examples/custom_op.rs"]
mod example;

use example::Swish;
use mtdiff_engine::ops::grid;
use mtdiff_engine::{Binding, CustomOp, DType, Kernel, Result, Tensor};

#[test]
fn the_example_op_matches_its_reference_and_finite_differences() {
    let r = example::check(&common::device()).unwrap();
    assert!(r.forward < 1e-5, "{r:?}");
    assert!(r.gradient < 1e-3, "{r:?}");
}

#[test]
fn a_custom_op_is_batched_and_its_pipeline_cached() {
    // A device of its own: the other tests of this process dispatch concurrently.
    let dev = mtdiff_engine::Device::new(mtdiff_engine::DeviceOptions::default()).unwrap();
    let x = Tensor::from_slice(&dev, &[0.5, -1.0, 2.0], &[3]).unwrap();
    let beta = Tensor::from_slice(&dev, &[1.0], &[1]).unwrap();
    Tensor::apply_op(Swish, &[&x, &beta]).unwrap(); // builds the pipeline
    dev.synchronize().unwrap();
    let (before, pipelines) = (dev.dispatch_stats(), dev.pipeline_count());
    let ys: Vec<Tensor> = (0..3)
        .map(|_| Tensor::apply_op(Swish, &[&x, &beta]).unwrap())
        .collect();
    let after = dev.dispatch_stats();
    assert_eq!(after.dispatches - before.dispatches, 3);
    assert_eq!(
        after.submits, before.submits,
        "recorded, not submitted per op"
    );
    assert_eq!(dev.pipeline_count(), pipelines, "the pipeline is reused");
    let y = ys[2].to_vec().unwrap();
    let want = example::swish_reference(&[0.5, -1.0, 2.0], 1.0);
    for (a, b) in y.iter().zip(want) {
        assert!((*a as f64 - b).abs() < 1e-6, "{y:?}");
    }
    assert!(
        ys[0].op_name().is_none(),
        "no input requires grad: no graph"
    );
    let xg = x.with_grad();
    assert_eq!(
        Tensor::apply_op(Swish, &[&xg, &beta]).unwrap().op_name(),
        Some("swish")
    );
}

const SCALE_WGSL: &str = r#"
struct ScaleParams { n: u32, factor: f32 }
@group(0) @binding(0) var<uniform> params: ScaleParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@compute @workgroup_size(256)
fn scale(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let i = gid(wid, nwg, lid);
    if (i < params.n) { dst[i] = src[i] * params.factor; }
}
"#;

mtdiff_engine::kernel_params! {
    /// Laid out like the WGSL.
    pub struct ScaleParams {
        /// Elements.
        n: u32,
        /// Multiplier.
        factor: f32,
    }
    /// The same members, swapped: must be refused, not read as the wrong words.
    pub struct SwappedParams {
        /// Multiplier.
        factor: f32,
        /// Elements.
        n: u32,
    }
}

fn err(r: Result<()>) -> String {
    r.expect_err("should fail").to_string()
}

#[test]
fn a_kernel_that_disagrees_with_its_declaration_is_refused() {
    let dev = common::device();
    let x = Tensor::from_slice(&dev, &[1.0; 300], &[300]).unwrap();
    let y = Tensor::empty(&dev, &[300], DType::F32).unwrap();
    let bindings = [Binding::read("src"), Binding::write("dst")];
    let ok = Kernel::<ScaleParams>::new("scale", SCALE_WGSL, "scale", &bindings);
    ok.dispatch(
        &ScaleParams {
            n: 300,
            factor: 2.5,
        },
        &[&x, &y],
        grid(300, 256),
    )
    .unwrap();
    assert!(y.to_vec().unwrap().iter().all(|&v| v == 2.5));

    // The parameter struct: a Rust struct whose name or members differ.
    let named = Kernel::<SwappedParams>::new("scale", SCALE_WGSL, "scale", &bindings);
    let e = err(named.dispatch(&SwappedParams::default(), &[&x, &y], [1, 1, 1]));
    assert!(
        e.contains("ScaleParams") && e.contains("SwappedParams"),
        "{e}"
    );
    let swapped = SCALE_WGSL.replace("struct ScaleParams", "struct SwappedParams");
    let swapped = swapped.replace(
        "var<uniform> params: ScaleParams",
        "var<uniform> params: SwappedParams",
    );
    let k = Kernel::<SwappedParams>::new("scale", swapped, "scale", &bindings);
    let e = err(k.dispatch(&SwappedParams::default(), &[&x, &y], [1, 1, 1]));
    assert!(e.contains("members") && e.contains("factor"), "{e}");

    // Bindings: a wrong name, a wrong access, a wrong count of tensors.
    let k = Kernel::<ScaleParams>::new(
        "scale",
        SCALE_WGSL,
        "scale",
        &[Binding::read("input"), Binding::write("dst")],
    );
    let e = err(k.dispatch(&ScaleParams::default(), &[&x, &y], [1, 1, 1]));
    assert!(e.contains("input") && e.contains("src"), "{e}");
    let k = Kernel::<ScaleParams>::new(
        "scale",
        SCALE_WGSL,
        "scale",
        &[Binding::read("src"), Binding::read("dst")],
    );
    let e = err(k.dispatch(&ScaleParams::default(), &[&x, &y], [1, 1, 1]));
    assert!(e.contains("ReadWrite"), "{e}");
    let e = err(ok.dispatch(&ScaleParams::default(), &[&x], [1, 1, 1]));
    assert!(e.contains("1 tensors given for the 2 bindings"), "{e}");

    // The entry point and the WGSL itself.
    let k = Kernel::<ScaleParams>::new("scale", SCALE_WGSL, "scal", &bindings);
    assert!(err(k.dispatch(&ScaleParams::default(), &[&x, &y], [1, 1, 1])).contains("`scal`"));
    let k = Kernel::<ScaleParams>::new("scale", "fn broken(", "scale", &bindings);
    assert!(err(k.dispatch(&ScaleParams::default(), &[&x, &y], [1, 1, 1])).contains("validate"));

    // Writing into a tensor that requires grad would bypass autodiff.
    let yg = Tensor::zeros(&dev, &[300]).unwrap().with_grad();
    let e = err(ok.dispatch(&ScaleParams::default(), &[&x, &yg], [1, 1, 1]));
    assert!(e.contains("`dst`") && e.contains("requires grad"), "{e}");
}

/// An op without a backward, and one whose backward returns too few gradients.
struct Doubling {
    broken_backward: bool,
}

impl CustomOp for Doubling {
    fn name(&self) -> &'static str {
        "doubling"
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        static K: std::sync::OnceLock<Kernel<ScaleParams>> = std::sync::OnceLock::new();
        let k = K.get_or_init(|| {
            Kernel::new(
                "scale",
                SCALE_WGSL,
                "scale",
                &[Binding::read("src"), Binding::write("dst")],
            )
        });
        let x = inputs[0];
        let y = Tensor::empty(x.device(), x.dims(), DType::F32)?;
        let n = x.numel();
        k.dispatch(
            &ScaleParams {
                n: n as u32,
                factor: 2.0,
            },
            &[x, &y],
            grid(n, 256),
        )?;
        Ok(y)
    }
    fn backward(
        &self,
        inputs: &[Tensor],
        output: &Tensor,
        grad: &Tensor,
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        if self.broken_backward {
            return Ok(vec![]);
        }
        // The default: no backward.
        struct NoBackward;
        impl CustomOp for NoBackward {
            fn name(&self) -> &'static str {
                "doubling"
            }
            fn forward(&self, _: &[&Tensor]) -> Result<Tensor> {
                unreachable!()
            }
        }
        NoBackward.backward(inputs, output, grad, needs)
    }
}

#[test]
fn a_custom_backward_that_is_missing_or_wrong_is_a_clear_error() {
    let dev = common::device();
    let x = Tensor::from_slice(&dev, &[1.0, 2.0], &[2])
        .unwrap()
        .with_grad();
    let y = Tensor::apply_op(
        Doubling {
            broken_backward: false,
        },
        &[&x],
    )
    .unwrap();
    assert_eq!(y.to_vec().unwrap(), vec![2.0, 4.0]);
    let e = y
        .sum_all()
        .unwrap()
        .backward()
        .err()
        .expect("fails")
        .to_string();
    assert!(e.contains("doubling") && e.contains("no backward"), "{e}");
    let y = Tensor::apply_op(
        Doubling {
            broken_backward: true,
        },
        &[&x],
    )
    .unwrap();
    let e = y
        .sum_all()
        .unwrap()
        .backward()
        .err()
        .expect("fails")
        .to_string();
    assert!(e.contains("0 gradients for 1 inputs"), "{e}");
}

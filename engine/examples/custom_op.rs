//! A custom op defined outside the engine: Swish with a learnable slope, y = x·σ(β·x), with its
//! own WGSL kernels (forward; backward giving ∂y/∂x and the per-element terms of ∂y/∂β) and an
//! engine reduction for β's gradient. It runs on the engine's device like any op (batched into
//! the pending command buffer, cached pipelines, autodiff), and is checked here against a plain
//! CPU reference and against finite differences of the GPU forward.
//!
//! Run: `cargo run --release -p mtdiff-engine --example custom_op` (exit status 1 if a check fails).
//! `engine/tests/custom_op.rs` runs the same checks as a test.

use mtdiff_engine::ops::grid;
use mtdiff_engine::{Binding, CustomOp, DType, Device, DeviceOptions, Kernel, Result, Tensor};

mtdiff_engine::kernel_params! {
    /// The Swish kernels' parameters (the WGSL struct `SwishParams` below).
    pub struct SwishParams {
        /// Elements of x.
        n: u32,
    }
}

/// Both kernels; the engine's prelude (`gid`, `sigmoid`, …) is put in front when compiled.
const SWISH_WGSL: &str = r#"
struct SwishParams { n: u32 }
@group(0) @binding(0) var<uniform> params: SwishParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> beta: array<f32>;   // one element
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

// y = x·σ(β·x)
@compute @workgroup_size(256)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = gid(wid, nwg, lid);
    if (i >= params.n) { return; }
    y[i] = x[i] * sigmoid(beta[0] * x[i]);
}
"#;

const SWISH_BACKWARD_WGSL: &str = r#"
struct SwishParams { n: u32 }
@group(0) @binding(0) var<uniform> params: SwishParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> beta: array<f32>;
@group(0) @binding(3) var<storage, read> grad: array<f32>;        // ∂L/∂y
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;    // ∂L/∂x
@group(0) @binding(5) var<storage, read_write> dbeta: array<f32>; // ∂L/∂y · ∂y/∂β, per element

// With s = σ(βx): ∂y/∂x = s + βx·s(1−s), ∂y/∂β = x²·s(1−s).
@compute @workgroup_size(256)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let i = gid(wid, nwg, lid);
    if (i >= params.n) { return; }
    let v = x[i];
    let s = sigmoid(beta[0] * v);
    let ds = s * (1.0 - s);
    dx[i] = grad[i] * (s + beta[0] * v * ds);
    dbeta[i] = grad[i] * v * v * ds;
}
"#;

/// The forward kernel, built once per process (the device caches its pipeline).
fn forward_kernel() -> &'static Kernel<SwishParams> {
    static K: std::sync::OnceLock<Kernel<SwishParams>> = std::sync::OnceLock::new();
    K.get_or_init(|| {
        Kernel::new(
            "swish",
            SWISH_WGSL,
            "forward",
            &[
                Binding::read("x"),
                Binding::read("beta"),
                Binding::write("y"),
            ],
        )
    })
}

/// The backward kernel.
fn backward_kernel() -> &'static Kernel<SwishParams> {
    static K: std::sync::OnceLock<Kernel<SwishParams>> = std::sync::OnceLock::new();
    K.get_or_init(|| {
        Kernel::new(
            "swish",
            SWISH_BACKWARD_WGSL,
            "backward",
            &[
                Binding::read("x"),
                Binding::read("beta"),
                Binding::read("grad"),
                Binding::write("dx"),
                Binding::write("dbeta"),
            ],
        )
    })
}

/// Swish with a learnable slope: inputs x (any shape) and β (shape [1]).
pub struct Swish;

impl CustomOp for Swish {
    fn name(&self) -> &'static str {
        "swish"
    }

    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let [x, beta] = inputs else {
            return Err(mtdiff_engine::Error::Invalid {
                op: "swish",
                message: format!("takes x and β, got {} inputs", inputs.len()),
            });
        };
        if beta.dims() != [1] {
            return Err(mtdiff_engine::Error::Shape {
                op: "swish",
                expected: "β of shape [1]".into(),
                got: format!("{:?}", beta.dims()),
            });
        }
        let y = Tensor::empty(x.device(), x.dims(), DType::F32)?;
        let n = x.numel();
        forward_kernel().dispatch(&SwishParams { n: n as u32 }, &[x, beta, &y], grid(n, 256))?;
        Ok(y)
    }

    fn backward(
        &self,
        inputs: &[Tensor],
        _output: &Tensor,
        grad: &Tensor,
        _needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        let (x, beta) = (&inputs[0], &inputs[1]);
        let dev = x.device();
        let dx = Tensor::empty(dev, x.dims(), DType::F32)?;
        let terms = Tensor::empty(dev, x.dims(), DType::F32)?;
        let n = x.numel();
        backward_kernel().dispatch(
            &SwishParams { n: n as u32 },
            &[x, beta, grad, &dx, &terms],
            grid(n, 256),
        )?;
        // β's gradient sums the per-element terms with an engine reduction.
        let dbeta = terms.sum_all()?.reshape(&[1])?;
        Ok(vec![Some(dx), Some(dbeta)])
    }
}

/// x·σ(β·x) on the CPU, in f64.
pub fn swish_reference(x: &[f32], beta: f64) -> Vec<f64> {
    x.iter()
        .map(|&v| {
            let v = v as f64;
            v / (1.0 + (-beta * v).exp())
        })
        .collect()
}

/// The largest errors the checks found.
#[derive(Debug)]
pub struct Report {
    /// Forward against the CPU reference.
    pub forward: f64,
    /// Autodiff gradients against central finite differences of the GPU forward, relative.
    pub gradient: f64,
}

/// Runs Swish on 1000 elements (not a multiple of the 256-wide workgroup), compares the forward
/// with the CPU reference and the gradients of L = Σ w·y with finite differences.
pub fn check(dev: &Device) -> Result<Report> {
    let n = 1000;
    let xs: Vec<f32> = (0..n)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 12.5)
        .collect();
    let ws: Vec<f32> = (0..n).map(|i| 0.5 + (i * 13 % 17) as f32 / 8.0).collect();
    let beta0 = 1.3f32;
    let x = Tensor::from_slice(dev, &xs, &[10, 100])?.with_grad();
    let beta = Tensor::from_slice(dev, &[beta0], &[1])?.with_grad();
    let w = Tensor::from_slice(dev, &ws, &[10, 100])?;

    let y = Tensor::apply_op(Swish, &[&x, &beta])?;
    let expect = swish_reference(&xs, beta0 as f64);
    let forward = y
        .to_vec()?
        .iter()
        .zip(&expect)
        .map(|(a, b)| (*a as f64 - b).abs())
        .fold(0.0, f64::max);

    let grads = y.mul(&w)?.sum_all()?.backward()?;
    let dx = grads.get(&x).expect("x requires grad").to_vec()?;
    let dbeta = grads.get(&beta).expect("β requires grad").to_vec()?[0] as f64;

    // Central differences of the GPU forward, read back and combined in f64: ∂L/∂xᵢ = wᵢ·∂yᵢ/∂xᵢ
    // (one element changes), ∂L/∂β = Σ wᵢ·∂yᵢ/∂β.
    let forward_at = |xs: &[f32], b: f32| -> Result<Vec<f64>> {
        let x = Tensor::from_slice(dev, xs, &[10, 100])?;
        let beta = Tensor::from_slice(dev, &[b], &[1])?;
        let y = Tensor::apply_op(Swish, &[&x, &beta])?.to_vec()?;
        Ok(y.into_iter().map(f64::from).collect())
    };
    let rel = |a: f64, b: f64| (a - b).abs() / b.abs().max(1e-2);
    let h = 1e-2f32;
    let mut gradient = 0.0f64;
    for i in [0usize, 3, 257, 511, 999] {
        let (mut plus, mut minus) = (xs.clone(), xs.clone());
        plus[i] += h;
        minus[i] -= h;
        let step = (plus[i] - minus[i]) as f64;
        let fd =
            ws[i] as f64 * (forward_at(&plus, beta0)?[i] - forward_at(&minus, beta0)?[i]) / step;
        gradient = gradient.max(rel(dx[i] as f64, fd));
    }
    let (bp, bm) = (beta0 + h, beta0 - h);
    let (yp, ym) = (forward_at(&xs, bp)?, forward_at(&xs, bm)?);
    let fd_beta: f64 =
        (0..n).map(|i| ws[i] as f64 * (yp[i] - ym[i])).sum::<f64>() / (bp - bm) as f64;
    gradient = gradient.max(rel(dbeta, fd_beta));
    Ok(Report { forward, gradient })
}

fn main() -> std::process::ExitCode {
    let run = || -> Result<Report> { check(&Device::new(DeviceOptions::default())?) };
    match run() {
        Ok(r) if r.forward < 1e-5 && r.gradient < 1e-3 => {
            println!(
                "swish custom op: forward max error {:.2e} vs the CPU reference, gradients within \
                 {:.2e} (relative) of finite differences",
                r.forward, r.gradient
            );
            std::process::ExitCode::SUCCESS
        }
        Ok(r) => {
            eprintln!("swish custom op: check failed: {r:?}");
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

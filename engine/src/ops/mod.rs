//! Ops: each module holds an op family's shape checks, forward dispatch and backward rule.

pub mod attention;
pub mod conv;
pub mod conv_subgroup;
pub mod diffusion;
pub mod elementwise;
pub mod layout;
pub mod loss;
pub mod matmul;
pub mod matmul_subgroup;
pub mod norm;
pub mod reduce;
pub mod resample;

use std::sync::Arc;

use crate::device::{Access, Device, KernelSource, Pipeline};
use crate::error::{Error, Result};
use crate::tensor::{DType, Tensor};

pub use elementwise::{BinaryOp, UnaryOp};

/// Workgroups for `threads` threads in groups of `wg`, spread over x and y (x ≤ 65535).
pub(crate) fn grid(threads: usize, wg: usize) -> [u32; 3] {
    let groups = threads.div_ceil(wg).max(1);
    let x = groups.min(65535);
    [x as u32, groups.div_ceil(x) as u32, 1]
}

/// Integer index helpers (`udiv`, `urem`) prepended to every shader built by [`kernel`].
pub const INDEX_MATH: &str = include_str!("../../../shaders/index_math.wgsl");

/// `source` with the shared index helpers in front, as [`kernel`] compiles it.
pub fn with_index_math(source: &str) -> String {
    format!("{INDEX_MATH}\n{source}")
}

/// The cached pipeline of a static WGSL file's entry point with override constants (the file
/// gets [`INDEX_MATH`] in front).
pub(crate) fn kernel(
    device: &Device,
    label: &'static str,
    source: &'static str,
    entry: &'static str,
    constants: &[(&'static str, f64)],
    bindings: &'static [Access],
) -> Result<Arc<Pipeline>> {
    let mut key = format!("{label}.{entry}");
    for (k, v) in constants {
        key.push_str(&format!(".{k}={v}"));
    }
    let consts: Vec<(&'static str, f64)> = constants.to_vec();
    device.pipeline(&key, move || KernelSource {
        label,
        source: with_index_math(source).into(),
        entry,
        constants: Box::leak(consts.into_boxed_slice()),
        bindings,
    })
}

/// Checks that every tensor is f32 and on the first one's device.
pub(crate) fn check_f32(op: &'static str, ts: &[&Tensor]) -> Result<()> {
    let dev = ts[0].device();
    for t in ts {
        t.expect_dtype(op, DType::F32)?;
        if !t.device().same(dev) {
            return Err(Error::invalid(op, "operands live on different devices"));
        }
    }
    Ok(())
}

/// A tensor filled with `value`.
pub fn full(device: &Device, shape: &[usize], value: f32) -> Result<Tensor> {
    elementwise::fill(device, shape, value)
}

#[cfg(test)]
mod tests {
    use super::{grid, kernel};
    use crate::device::Access;
    use crate::{Device, DeviceOptions, Tensor};

    /// A test kernel: q[k] = udiv(i[k], d[k]), r[k] = urem(i[k], d[k]).
    const UDIV_TEST: &str = "
@group(0) @binding(0) var<uniform> P: array<vec4<u32>, 16>;
@group(0) @binding(1) var<storage, read> ti: array<u32>;
@group(0) @binding(2) var<storage, read> td: array<u32>;
@group(0) @binding(3) var<storage, read_write> tq: array<u32>;
@group(0) @binding(4) var<storage, read_write> tr: array<u32>;
@compute @workgroup_size(64)
fn udiv_test(@builtin(global_invocation_id) g: vec3<u32>) {
    if (g.x >= P[0].x) { return; }
    tq[g.x] = udiv(ti[g.x], td[g.x]);
    tr[g.x] = urem(ti[g.x], td[g.x]);
}
";

    #[test]
    fn udiv_and_urem_equal_integer_division_over_the_u32_range() {
        let dev = Device::new(DeviceOptions::default()).expect("an adapter");
        let divisors = [
            1u32,
            2,
            3,
            5,
            7,
            9,
            16,
            33,
            255,
            256,
            257,
            1000,
            4095,
            65535,
            65537,
            999_983,
            1 << 20,
            (1 << 24) + 1,
            123_456_789,
            (1 << 30) - 1,
        ];
        let mut rng = crate::rng::CpuRng::new(7);
        let (mut is, mut ds) = (Vec::new(), Vec::new());
        for &d in &divisors {
            // Multiples of d and their neighbours, powers of two, the ends of the range, random.
            let mut cands = vec![
                0u32,
                1,
                d - 1,
                d,
                d.saturating_add(1),
                u32::MAX,
                u32::MAX - 1,
            ];
            for k in [1u64, 2, 3, 1000, 1 << 12, 1 << 20, 1 << 24] {
                let m = k * d as u64;
                for m in [m.saturating_sub(1), m, m + 1] {
                    if m <= u32::MAX as u64 {
                        cands.push(m as u32);
                    }
                }
            }
            for s in 0..32 {
                cands.push(1u32 << s);
                cands.push((1u32 << s).wrapping_sub(1));
            }
            for _ in 0..200 {
                cands.push((rng.range(0.0, 1.0) * u32::MAX as f64) as u32);
                cands.push((rng.range(0.0, 1.0) * (1u32 << 24) as f64) as u32);
            }
            ds.extend(std::iter::repeat_n(d, cands.len()));
            is.extend(cands);
        }
        let n = is.len();
        let ti = Tensor::from_u32(&dev, &is, &[n]).unwrap();
        let td = Tensor::from_u32(&dev, &ds, &[n]).unwrap();
        let tq = Tensor::from_u32(&dev, &vec![0; n], &[n]).unwrap();
        let tr = Tensor::from_u32(&dev, &vec![0; n], &[n]).unwrap();
        const RW: [Access; 4] = [
            Access::Read,
            Access::Read,
            Access::ReadWrite,
            Access::ReadWrite,
        ];
        let k = kernel(&dev, "udiv_test", UDIV_TEST, "udiv_test", &[], &RW).unwrap();
        dev.dispatch(
            &k,
            &[n as u32],
            &[ti.arg(), td.arg(), tq.arg(), tr.arg()],
            grid(n, 64),
        )
        .unwrap();
        let (q, rem) = (tq.to_vec_u32().unwrap(), tr.to_vec_u32().unwrap());
        for k in 0..n {
            assert_eq!(
                (q[k], rem[k]),
                (is[k] / ds[k], is[k] % ds[k]),
                "udiv/urem({}, {})",
                is[k],
                ds[k]
            );
        }
    }
}

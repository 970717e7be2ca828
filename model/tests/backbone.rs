//! The U-Net backbone: the reference configuration reproduces `data/reference_unet.json` (the
//! PyTorch peer's specification) exactly (every name and shape, 1,179,105 parameters); a tiny
//! configuration runs forward and backward with outputs of the right shapes and finite gradients
//! for every parameter.

use mtdiff_model::backbone::Downsample;
use mtdiff_model::engine::{Device, DeviceOptions, Tensor};
use mtdiff_model::nn::ParamStore;
use mtdiff_model::{UNet, UNetConfig};
use serde_json::Value;

#[test]
fn reference_unet_has_the_peer_parameters_exactly() {
    let peer: Value = serde_json::from_str(include_str!("data/reference_unet.json")).unwrap();
    let dev = Device::new(DeviceOptions::default()).unwrap();
    let mut ps = ParamStore::new(&dev, 0);
    UNet::new(&mut ps, &UNetConfig::reference()).unwrap();
    assert_eq!(ps.count() as u64, peer["param_count"].as_u64().unwrap());
    assert_eq!(ps.count(), 1_179_105);
    let ours: Vec<(String, Vec<usize>)> = ps
        .named()
        .iter()
        .map(|(n, t)| (n.clone(), t.dims().to_vec()))
        .collect();
    let theirs: Vec<(String, Vec<usize>)> = peer["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["shape"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_u64().unwrap() as usize)
                    .collect(),
            )
        })
        .collect();
    assert_eq!(ours, theirs, "names, shapes and order of the parameters");
}

fn tiny(res_blocks: usize, attn_levels: Vec<usize>, downsample: Downsample) -> UNetConfig {
    UNetConfig {
        in_channels: 2,
        out_channels: 3,
        channels: vec![8, 16],
        groups: 4,
        time_sin_dim: 8,
        time_dim: 16,
        attn_heads: 2,
        res_blocks,
        attn_levels,
        downsample,
        class_tokens: 0,
        scale_shift: false,
    }
}

#[test]
fn tiny_unet_forward_and_backward() {
    check_tiny(&tiny(1, vec![], Downsample::StridedConv), 0);
}

#[test]
fn unet_with_two_blocks_per_level_attention_at_full_resolution_and_pooling() {
    let cfg = tiny(2, vec![0], Downsample::AvgPool);
    let names = check_tiny(&cfg, 1);
    for n in [
        "enc0_1.conv1.weight",
        "enc0_attn.qkv.weight",
        "dec0_1_attn.proj.bias",
    ] {
        assert!(names.iter().any(|m| m == n), "{n} missing from {names:?}");
    }
    assert!(
        !names.iter().any(|m| m.starts_with("down")),
        "pooling has no parameters"
    );
}

#[test]
fn scale_shift_blocks_project_the_embedding_to_a_scale_and_a_shift() {
    let cfg = UNetConfig {
        scale_shift: true,
        ..tiny(1, vec![], Downsample::StridedConv)
    };
    let names = check_tiny(&cfg, 2);
    assert!(
        !names.iter().any(|n| n.contains("norm2")),
        "the second norm takes its affine from the embedding: {names:?}"
    );
    let dev = Device::new(DeviceOptions::default()).unwrap();
    let mut ps = ParamStore::new(&dev, 0);
    UNet::new(&mut ps, &cfg).unwrap();
    let shape = |name: &str| {
        ps.named()
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.dims().to_vec())
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    assert_eq!(shape("enc0.temb.weight"), vec![16, 16], "2 × 8 channels");
    assert_eq!(shape("mid2.temb.weight"), vec![32, 16], "2 × 16 channels");
}

#[test]
fn bad_unet_configs_are_rejected_with_the_field_named() {
    let dev = Device::new(DeviceOptions::default()).unwrap();
    for (cfg, needle) in [
        (tiny(0, vec![], Downsample::StridedConv), "res_blocks"),
        (tiny(1, vec![1], Downsample::StridedConv), "attn_levels"),
        (
            UNetConfig {
                channels: vec![8, 10],
                ..tiny(1, vec![], Downsample::StridedConv)
            },
            "groups",
        ),
    ] {
        let mut ps = ParamStore::new(&dev, 0);
        let msg = UNet::new(&mut ps, &cfg).err().unwrap().to_string();
        assert!(msg.contains(needle), "{needle}: {msg}");
    }
}

/// Runs forward and backward on a tiny config; returns the parameter names.
fn check_tiny(cfg: &UNetConfig, seed: u64) -> Vec<String> {
    let dev = Device::new(DeviceOptions::default()).unwrap();
    let mut ps = ParamStore::new(&dev, seed);
    let net = UNet::new(&mut ps, cfg).unwrap();
    let mut rng = mtdiff_model::engine::rng::CpuRng::new(3);
    let x = Tensor::from_slice(&dev, &rng.vec_normal(2 * 2 * 8 * 8, 1.0), &[2, 2, 8, 8]).unwrap();
    let t = Tensor::from_u32(&dev, &[3, 700], &[2]).unwrap();
    let out = net.forward(&x, &t).unwrap();
    assert_eq!(out.out.dims(), &[2, 3, 8, 8]);
    assert_eq!(out.bottleneck.dims(), &[2, 16, 4, 4]);
    assert_eq!(out.last.dims(), &[2, 8, 8, 8]);
    let loss = out.out.square().unwrap().mean_all().unwrap();
    let grads = loss.backward().unwrap();
    for (name, p) in ps.named() {
        let g = grads
            .get(p)
            .unwrap_or_else(|| panic!("{name} has no gradient"))
            .to_vec()
            .unwrap();
        assert!(
            g.iter().all(|v| v.is_finite()),
            "{name}: non-finite gradient"
        );
    }
    assert!(loss.to_scalar().unwrap().is_finite());
    // Bad input shape: a clear error.
    let bad = Tensor::zeros(&dev, &[1, 2, 7, 8]).unwrap();
    let msg = net
        .forward(&bad, &Tensor::from_u32(&dev, &[0], &[1]).unwrap())
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("divisible by 2"), "{msg}");
    ps.named().iter().map(|(n, _)| n.clone()).collect()
}

#[test]
fn class_table_rows_are_orthogonal_of_one_norm_with_a_zero_none_row() {
    let dev = Device::new(DeviceOptions::default()).unwrap();
    let mut ps = ParamStore::new(&dev, 3);
    let (rows, dim, norm) = (11, 16, 4.0);
    let t = ps.class_table("emb", rows, dim, norm).unwrap();
    assert_eq!(t.dims(), [rows, dim]);
    let v = t.to_vec().unwrap();
    let row = |r: usize| &v[r * dim..(r + 1) * dim];
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x * y) as f64).sum::<f64>();
    for a in 0..rows - 1 {
        assert!((dot(row(a), row(a)).sqrt() - norm).abs() < 1e-4, "row {a}");
        for b in a + 1..rows - 1 {
            assert!(dot(row(a), row(b)).abs() < 1e-4, "rows {a} and {b}");
        }
    }
    assert!(
        row(rows - 1).iter().all(|&x| x == 0.0),
        "the none row is zero"
    );
    // More classes than dimensions: every class row still has the norm.
    let wide = ps.class_table("wide", 6, 3, 2.0).unwrap().to_vec().unwrap();
    for r in 0..5 {
        let n = dot(&wide[r * 3..r * 3 + 3], &wide[r * 3..r * 3 + 3]).sqrt();
        assert!((n - 2.0).abs() < 1e-4, "wide row {r}: {n}");
    }
    assert!(wide[15..].iter().all(|&x| x == 0.0));
}

/// The U-Net under f16 autocast (`--precision f16-mixed`), with attention and scale-shift
/// blocks, in both kernel profiles: the output is within f16 rounding of the f32 one (each
/// conv and matmul input rounded by 2⁻¹¹ relative, a few percent after the network at most)
/// and not identical, and every parameter's gradient is f32, finite and close.
#[test]
fn unet_under_f16_autocast_is_close_to_f32_in_both_profiles() {
    use mtdiff_model::engine::{Autocast, DType, KernelProfile};
    let cfg = UNetConfig {
        scale_shift: true,
        ..tiny(1, vec![0], Downsample::StridedConv)
    };
    for profile in [KernelProfile::Cpu, KernelProfile::Gpu] {
        let dev = Device::new(DeviceOptions {
            profile: Some(profile),
            ..Default::default()
        })
        .unwrap();
        let mut ps = ParamStore::new(&dev, 4);
        let net = UNet::new(&mut ps, &cfg).unwrap();
        let mut rng = mtdiff_model::engine::rng::CpuRng::new(5);
        let x =
            Tensor::from_slice(&dev, &rng.vec_normal(2 * 2 * 8 * 8, 1.0), &[2, 2, 8, 8]).unwrap();
        let t = Tensor::from_u32(&dev, &[3, 700], &[2]).unwrap();
        let run = |f16: bool| {
            let out = {
                let _precision = f16.then(Autocast::f16);
                net.forward(&x, &t).unwrap().out
            };
            let loss = out.square().unwrap().mean_all().unwrap();
            (out.to_vec().unwrap(), loss.backward().unwrap())
        };
        let ((y32, g32), (y16, g16)) = (run(false), run(true));
        assert_ne!(y32, y16, "{profile:?}: autocast changed nothing");
        let scale = y32.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
        let worst = y32
            .iter()
            .zip(&y16)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            worst <= 0.02 * scale,
            "{profile:?}: output off by {worst} (scale {scale})"
        );
        for (name, p) in ps.named() {
            let (a, b) = (g32.get(p).unwrap(), g16.get(p).unwrap());
            assert_eq!(b.dtype(), DType::F32, "{name}");
            let (a, b) = (a.to_vec().unwrap(), b.to_vec().unwrap());
            let norm = a.iter().map(|v| v * v).sum::<f32>().sqrt();
            let diff = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x - y) * (x - y))
                .sum::<f32>()
                .sqrt();
            assert!(
                b.iter().all(|v| v.is_finite()),
                "{profile:?} {name}: non-finite"
            );
            assert!(
                diff <= 0.05 * norm + 1e-6,
                "{profile:?} {name}: gradient off by {diff} of {norm}"
            );
        }
    }
}

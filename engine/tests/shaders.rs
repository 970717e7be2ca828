//! naga parses and validates every WGSL file in shaders/, for every set of override constants and
//! every generated variant the engine uses, and checks that each kernel's uniform parameter
//! struct has the layout of the Rust struct of the same name (`mtdiff_engine::params`).

use mtdiff_engine::ops::attention::attention_source;
use mtdiff_engine::ops::sources::{generated_kernels, STATIC_KERNELS};

/// Checks every uniform global of `module` against the Rust parameter struct of its type's name
/// (size, member names and offsets); how many it checked.
fn check_params(name: &str, module: &naga::Module) -> usize {
    mtdiff_engine::reflect::check_params(module, &mtdiff_engine::ops::param_layouts())
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn validate(name: &str, kernel: &str, overrides: &[(&str, f64)]) {
    let mtdiff_engine::reflect::Reflection { module, info } =
        mtdiff_engine::reflect::parse(&mtdiff_engine::ops::with_prelude(kernel))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        check_params(name, &module) > 0,
        "{name}: no parameter struct"
    );
    let constants: naga::back::PipelineConstants =
        overrides.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    naga::back::pipeline_constants::process_overrides(&module, &info, None, &constants)
        .unwrap_or_else(|e| panic!("{name} with {overrides:?}: {e}"));
}

/// Every static kernel file (`ops::sources::STATIC_KERNELS`; `kernel_snapshots.rs` checks that
/// it lists every file of shaders/ but the prelude and the templates) with each set of override
/// constants the engine uses.
#[test]
fn every_shader_file_validates_with_its_overrides() {
    for (name, src) in STATIC_KERNELS {
        let ops: Vec<Vec<(&str, f64)>> = match *name {
            "elementwise.wgsl" => (0..13)
                .flat_map(|op| (0..7).map(move |b| vec![("OP", op as f64), ("BIDX", b as f64)]))
                .collect(),
            "reduce.wgsl" => vec![vec![("OP", 0.0)], vec![("OP", 1.0)]],
            "matmul_tiled.wgsl" => (0..4)
                .map(|i| vec![("TA", (i & 1) as f64), ("TB", (i >> 1) as f64)])
                .collect(),
            _ => vec![vec![]],
        };
        for o in &ops {
            validate(name, src, o);
        }
    }
    assert!(STATIC_KERNELS.len() >= 9, "expected the shader files");
}

#[test]
fn every_rust_parameter_struct_is_some_shaders_struct() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../shaders");
    let mut all = String::new();
    for entry in std::fs::read_dir(dir).expect("shaders/ exists") {
        all += &std::fs::read_to_string(entry.expect("entry").path()).expect("readable shader");
    }
    for l in mtdiff_engine::ops::param_layouts() {
        assert!(
            all.contains(&format!("struct {} {{", l.name)),
            "{} is in param_layouts() but no shader declares it",
            l.name
        );
    }
}

/// Every generated variant: register-blocked and subgroup matmuls, subgroup convs, attention.
#[test]
fn every_generated_kernel_validates() {
    let kernels = generated_kernels();
    for prefix in [
        "matmul_regblock.",
        "matmul_subgroup.",
        "conv2d_subgroup.",
        "attention.",
    ] {
        assert!(
            kernels.iter().any(|k| k.name.starts_with(prefix)),
            "no {prefix} variant"
        );
    }
    for k in &kernels {
        validate(&k.name, &k.source, &[]);
    }
}

#[test]
fn attention_template_validates_for_every_head_dim_used() {
    for d in [1, 7, 16, 32, 64, 128] {
        for tq in [1, 2, 4, 16] {
            validate(
                &format!("attention.wgsl d={d} tq={tq}"),
                &attention_source(d, tq),
                &[],
            );
        }
    }
}

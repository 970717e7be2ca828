//! naga parses and validates every WGSL file in shaders/, for every set of override constants and
//! every generated variant the engine uses, and checks that each kernel's uniform parameter
//! struct has the layout of the Rust struct of the same name (`mtdiff_engine::params`).

use mtdiff_engine::ops::attention::attention_source;
use mtdiff_engine::ops::conv_subgroup::ConvSubgroupVariant;
use mtdiff_engine::ops::matmul::{tiled_source, RegBlockVariant};
use mtdiff_engine::ops::matmul_subgroup::SubgroupVariant;

/// Checks every uniform global of `module` against the Rust parameter struct of its type's name
/// (size, member names and offsets); how many it checked.
fn check_params(name: &str, module: &naga::Module) -> usize {
    mtdiff_engine::reflect::check_params(module, &mtdiff_engine::ops::param_layouts())
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn validate(name: &str, kernel: &str, overrides: &[(&str, f64)]) {
    let src = &mtdiff_engine::ops::with_prelude(kernel);
    let module = naga::front::wgsl::parse_str(src)
        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));
    let info = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    )
    .validate(&module)
    .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));
    assert!(
        check_params(name, &module) > 0,
        "{name}: no parameter struct"
    );
    let constants: naga::back::PipelineConstants =
        overrides.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    naga::back::pipeline_constants::process_overrides(&module, &info, None, &constants)
        .unwrap_or_else(|e| panic!("{name} with {overrides:?}: {e}"));
}

#[test]
fn every_shader_file_validates_with_its_overrides() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../shaders");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).expect("shaders/ exists") {
        let path = entry.expect("readable entry").path();
        let name = path
            .file_name()
            .expect("a file name")
            .to_string_lossy()
            .to_string();
        let templates = [
            "prelude.wgsl",
            "matmul_regblock.wgsl",
            "matmul_subgroup.wgsl",
            "conv2d_subgroup.wgsl",
            "attention.wgsl",
        ];
        if templates.contains(&name.as_str()) {
            continue; // the prelude is in every source; templates: their variants, below
        }
        let src = std::fs::read_to_string(&path).expect("readable shader");
        let ops: Vec<Vec<(&str, f64)>> = match name.as_str() {
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
            validate(&name, &src, o);
        }
        seen += 1;
    }
    assert!(seen >= 9, "expected the shader files, found {seen}");
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

#[test]
fn every_register_blocked_matmul_variant_validates() {
    for v in RegBlockVariant::all() {
        validate(&format!("matmul_regblock.wgsl {v:?}"), &v.source(), &[]);
    }
    validate(
        "matmul_tiled.wgsl",
        tiled_source(),
        &[("TA", 1.0), ("TB", 0.0)],
    );
    for v in SubgroupVariant::all() {
        validate(&format!("matmul_subgroup.wgsl {v:?}"), &v.source(), &[]);
    }
}

#[test]
fn every_subgroup_conv_variant_validates() {
    for v in ConvSubgroupVariant::all() {
        validate(&format!("conv2d_subgroup.wgsl {v:?}"), &v.source(), &[]);
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

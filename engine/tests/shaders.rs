//! naga parses and validates every WGSL file in shaders/, for every set of override constants and
//! every generated variant the engine uses.

use mtdiff_engine::ops::attention::attention_source;
use mtdiff_engine::ops::conv_subgroup::ConvSubgroupVariant;
use mtdiff_engine::ops::matmul::{tiled_source, RegBlockVariant};
use mtdiff_engine::ops::matmul_subgroup::SubgroupVariant;

fn validate(name: &str, src: &str, overrides: &[(&str, f64)]) {
    let module = naga::front::wgsl::parse_str(src)
        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));
    let info = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    )
    .validate(&module)
    .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));
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
            "matmul_regblock.wgsl",
            "matmul_subgroup.wgsl",
            "conv2d_subgroup.wgsl",
            "attention.wgsl",
        ];
        if templates.contains(&name.as_str()) {
            continue; // templates: their generated variants are validated below
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
fn every_register_blocked_matmul_variant_validates() {
    for v in RegBlockVariant::all() {
        validate(&format!("{v:?}"), &v.source(), &[]);
    }
    validate("tiled", tiled_source(), &[("TA", 1.0), ("TB", 0.0)]);
    for v in SubgroupVariant::all() {
        validate(&format!("{v:?}"), &v.source(), &[]);
    }
}

#[test]
fn every_subgroup_conv_variant_validates() {
    for v in ConvSubgroupVariant::all() {
        validate(&format!("{v:?}"), &v.source(), &[]);
    }
}

#[test]
fn attention_template_validates_for_every_head_dim_used() {
    for d in [1, 7, 16, 32, 64, 128] {
        for tq in [1, 2, 4, 16] {
            validate(
                &format!("attention d={d} tq={tq}"),
                &attention_source(d, tq),
                &[],
            );
        }
    }
}

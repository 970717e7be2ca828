//! naga parses and validates every WGSL file in shaders/, for every set of override constants and
//! every generated variant the engine uses, and checks that each kernel's uniform parameter
//! struct has the layout of the Rust struct of the same name (`mtdiff_engine::params`).

use mtdiff_engine::ops::attention::attention_source;
use mtdiff_engine::ops::sources::{f16_input_kernels, generated_kernels, STATIC_KERNELS};

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
    for k in STATIC_KERNELS {
        let (name, src) = (&k.file, &k.source);
        let ops: Vec<Vec<(&str, f64)>> = match *name {
            "elementwise.wgsl" => (0..13)
                .flat_map(|op| (0..7).map(move |b| vec![("OP", op as f64), ("BIDX", b as f64)]))
                .collect(),
            "reduce.wgsl" => vec![vec![("OP", 0.0)], vec![("OP", 1.0)]],
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

/// Every generated variant: register-blocked and subgroup matmuls, subgroup convs, attention,
/// and the matmuls and convs with f16 inputs.
#[test]
fn every_generated_kernel_validates() {
    let mut kernels = generated_kernels();
    kernels.extend(f16_input_kernels());
    for prefix in [
        "matmul_tiled.bias0.f16-A.",
        "matmul_regblock.ta0tb0va1vb1.bias0.f16-A-B.",
        "matmul_subgroup.ta1tb0va0vb1.bias1.f16-B.",
        "conv2d_regblock.bias1.silu1.f16-src.",
        "conv2d_subgroup.Forward.bias1.silu0.tn16.vw1.row1.f16-src.",
        "conv2d_subgroup.Weight.tn32.vw0.row0.f16-src.",
        "attention.d8.tq4.f16-q-k-v-qv-kv-vv-bq-bk-bv.",
        "norm.f16-fx-qx-bx-wx.",
        "reduce.f16-ax-qx.",
        "elementwise.f16-ux-",
    ] {
        assert!(
            kernels.iter().any(|k| k.name.starts_with(prefix)),
            "no {prefix} variant"
        );
    }
    for prefix in [
        "matmul_tiled.",
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
        if k.name.starts_with("matmul_tiled.") {
            // The layouts are override constants.
            for i in 0..4 {
                let o = [("TA", (i & 1) as f64), ("TB", (i >> 1) as f64)];
                validate(&k.name, &k.source, &o);
            }
        } else {
            validate(&k.name, &k.source, &[]);
        }
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

/// Every kernel's binding declarations against its WGSL: each compute entry point of every file
/// (static and generated) is declared, and each declared entry point's bindings are the storage
/// bindings it uses, by name and access (what the pipeline cache checks when it builds one).
#[test]
fn every_entry_point_declares_the_bindings_it_uses() {
    let mut checked = 0;
    for k in mtdiff_engine::ops::sources::all_kernels() {
        let source = mtdiff_engine::ops::with_prelude(&k.source);
        let r =
            mtdiff_engine::reflect::parse(&source).unwrap_or_else(|e| panic!("{}: {e}", k.name));
        for e in &r.module.entry_points {
            assert!(
                k.entries.iter().any(|d| d.name == e.name),
                "{}: entry point `{}` is not in its table",
                k.name,
                e.name
            );
        }
        for d in &k.entries {
            let slots = mtdiff_engine::reflect::binding_slots(&source, d.name, d.bindings)
                .unwrap_or_else(|e| panic!("{}: {e}", k.name));
            assert_eq!(slots.len(), d.bindings.len());
            checked += 1;
        }
    }
    assert!(checked > 80, "{checked} entry points");
}

/// A declaration that differs from the WGSL is refused with both sides named.
#[test]
fn a_wrong_binding_declaration_is_refused() {
    use mtdiff_engine::Binding;
    let src = mtdiff_engine::ops::with_prelude(
        "@group(0) @binding(1) var<storage, read> x: array<f32>;
         @group(0) @binding(3) var<storage, read_write> y: array<f32>;
         @compute @workgroup_size(1) fn main() { y[0] = x[0]; }",
    );
    let ok = [Binding::read("x"), Binding::write("y")];
    assert_eq!(
        mtdiff_engine::reflect::binding_slots(&src, "main", &ok),
        Ok(vec![1, 3])
    );
    for (bad, says) in [
        (vec![Binding::read("x")], "`y` is used but not declared"),
        (
            vec![Binding::read("x"), Binding::read("y")],
            "`y` is ReadWrite in the WGSL",
        ),
        (
            vec![Binding::read("x"), Binding::write("z")],
            "`z` is not used",
        ),
        (
            vec![Binding::read("x"), Binding::write("y"), Binding::read("x")],
            "declared twice",
        ),
    ] {
        let e = mtdiff_engine::reflect::binding_slots(&src, "main", &bad).unwrap_err();
        assert!(e.contains(says) && e.contains("@binding(3) y"), "{e}");
    }
}

/// Every entry point of every kernel (static and generated) fits WebGPU's default limits, which
/// a browser guarantees (the page runs these kernels): at most 256 invocations per workgroup
/// (x, y ≤ 256, z ≤ 64), 16 KiB of workgroup memory, 8 storage buffers per stage.
#[test]
fn every_entry_point_fits_webgpus_default_limits() {
    let mut checked = 0;
    for k in mtdiff_engine::ops::sources::all_kernels() {
        let source = mtdiff_engine::ops::with_prelude(&k.source);
        let r =
            mtdiff_engine::reflect::parse(&source).unwrap_or_else(|e| panic!("{}: {e}", k.name));
        let mut layouter = naga::proc::Layouter::default();
        layouter.update(r.module.to_ctx()).expect("layouts");
        for (i, e) in r.module.entry_points.iter().enumerate() {
            let [x, y, z] = e.workgroup_size;
            let at = format!("{}::{}", k.name, e.name);
            assert!(
                x * y * z <= 256 && x <= 256 && y <= 256 && z <= 64,
                "{at}: workgroup {x}×{y}×{z}"
            );
            let uses = r.info.get_entry_point(i);
            let shared: u32 = r
                .module
                .global_variables
                .iter()
                .filter(|(h, g)| g.space == naga::AddressSpace::WorkGroup && !uses[*h].is_empty())
                .map(|(_, g)| layouter[g.ty].size)
                .sum();
            assert!(
                shared <= 16 * 1024,
                "{at}: {shared} bytes of workgroup memory"
            );
            let storage = r
                .module
                .global_variables
                .iter()
                .filter(|(h, g)| {
                    matches!(g.space, naga::AddressSpace::Storage { .. }) && !uses[*h].is_empty()
                })
                .count();
            assert!(storage <= 8, "{at}: {storage} storage buffers");
            checked += 1;
        }
    }
    assert!(checked > 80, "{checked} entry points");
}

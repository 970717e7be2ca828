//! The register-blocked conv2d kernels (`shaders/conv2d_regblock.wgsl`, a template this module
//! fills): forward, data gradient and weight gradient, each thread a 16 × 16 block of outputs in
//! 64 named vec4 accumulators. One variant per forward epilogue, so that a forward without bias
//! or without SiLU binds no bias or pre-activation buffer; the gradients are the same in all.
//! CPU reference: `cpu::conv2d`, `cpu::conv2d_backward`.

use std::fmt::Write;

use crate::ops::conv::{Activation, Epilogue, GRADIENT};
use crate::ops::sources::{entry, EntryPoint};
use crate::ops::template::fill;

const TEMPLATE: &str = include_str!("../../../shaders/conv2d_regblock.wgsl");

/// Rows (and columns) of a thread's block.
const BLOCK: usize = 16;

/// One register-blocked conv module: its forward's epilogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvRegBlockVariant {
    /// What the forward does after the reduction.
    pub epilogue: Epilogue,
}

impl ConvRegBlockVariant {
    /// The module the gradient kernels are taken from (they do not depend on the epilogue).
    pub const GRADIENTS: ConvRegBlockVariant = ConvRegBlockVariant {
        epilogue: Epilogue::PLAIN,
    };

    /// Every variant: each epilogue.
    pub fn all() -> Vec<ConvRegBlockVariant> {
        Epilogue::all()
            .into_iter()
            .map(|epilogue| ConvRegBlockVariant { epilogue })
            .collect()
    }

    /// Its entry points and the bindings each uses: the forward's depend on the epilogue.
    pub fn entries(self) -> [EntryPoint; 3] {
        [
            entry("conv2d_forward", self.epilogue.forward_bindings()),
            entry("conv2d_backward_data", GRADIENT),
            entry("conv2d_backward_weight", GRADIENT),
        ]
    }

    /// Pipeline cache key prefix (the entry point follows).
    pub fn key(self) -> String {
        format!("conv2d_regblock.{}", self.epilogue.key())
    }

    /// The WGSL source of this variant.
    pub fn source(self) -> String {
        let (bias, store) = epilogue_lines(self.epilogue);
        fill(
            TEMPLATE,
            &[
                ("ACC", &accumulators()),
                ("FORWARD_X", &gathered("x", "xo")),
                ("FORWARD_W", &weight_loads(16, "wrow[{i}] + wo")),
                ("FORWARD_FMA", &fmas(16, "x")),
                ("DATA_Y", &gathered("y", "yo")),
                ("DATA_W", &weight_loads(16, "(wb + wrow[{i}]) * kk + tap")),
                ("DATA_FMA", &fmas(16, "y")),
                ("WEIGHT_W", &weight_loads(8, "ybase + wrow[{i}]")),
                ("WEIGHT_FMA", &fmas(8, "x")),
                ("GATHER", &gather()),
                ("BIAS", &bias),
                ("STORE", &store),
            ],
        )
    }
}

/// The forward epilogue's bias line and store lines.
fn epilogue_lines(e: Epilogue) -> (String, String) {
    let bias = if e.bias {
        "        let b = bias[co];"
    } else {
        "        let b = 0.0;"
    };
    let store = match e.act {
        Activation::Silu => "            pre[o] = z;\n            dst[o] = silu(z);",
        Activation::Identity => "            dst[o] = z;",
    };
    (bias.into(), store.into())
}

/// Joins lines without a trailing newline (each slot sits on a line of its own).
fn lines(f: impl FnOnce(&mut String)) -> String {
    let mut s = String::new();
    f(&mut s);
    s.pop();
    s
}

/// The 64 accumulators: `a{i}_{q}` holds rows i, columns 4q..4q+4 of the block.
fn accumulators() -> String {
    lines(|s| {
        for i in 0..BLOCK {
            let row: Vec<String> = (0..4)
                .map(|q| format!("var a{i}_{q} = vec4<f32>(0.0);"))
                .collect();
            let _ = writeln!(s, "    {}", row.join(" "));
        }
    })
}

/// The block's 16 columns of one reduction step as 4 vec4s `{v}0..{v}3`, masked by `m0..m3`:
/// `src[off[j] + {at}]` for column j.
fn gathered(v: &str, at: &str) -> String {
    lines(|s| {
        for q in 0..4 {
            let elems: Vec<String> = (0..4)
                .map(|l| format!("src[off[{}] + {at}]", 4 * q + l))
                .collect();
            let _ = writeln!(
                s,
                "                let {v}{q} = vec4<f32>({}) * m{q};",
                elems.join(", ")
            );
        }
    })
}

/// The block's 16 row operands `w{i} = wsrc[index]`, `{i}` in `index` standing for the row.
fn weight_loads(indent: usize, index: &str) -> String {
    lines(|s| {
        for i in 0..BLOCK {
            let at = index.replace("{i}", &i.to_string());
            let _ = writeln!(s, "{}let w{i} = wsrc[{at}];", " ".repeat(indent));
        }
    })
}

/// The 16 × 16 multiply-adds of one reduction step: `a{i}_{q} += w{i} * {v}{q}`.
fn fmas(indent: usize, v: &str) -> String {
    lines(|s| {
        for i in 0..BLOCK {
            let row: Vec<String> = (0..4)
                .map(|q| format!("a{i}_{q} += w{i} * {v}{q};"))
                .collect();
            let _ = writeln!(s, "{}{}", " ".repeat(indent), row.join(" "));
        }
    })
}

/// The accumulators gathered into `acc` (the epilogue indexes the block).
fn gather() -> String {
    lines(|s| {
        for i in 0..BLOCK {
            let row: Vec<String> = (0..4)
                .map(|q| format!("acc[{}] = a{i}_{q};", 4 * i + q))
                .collect();
            let _ = writeln!(s, "    {}", row.join(" "));
        }
    })
}

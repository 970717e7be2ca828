//! The subgroup-blocked conv2d kernels for CPU adapters with 8-lane subgroups
//! (`shaders/conv2d_subgroup.wgsl`, a template this module unrolls): forward and data gradient,
//! each lane 8 pixels, the subgroup 16 or 32 channels shared through `subgroupBroadcast`.
//! Same parameters and bindings as `shaders/conv2d_regblock.wgsl`; CPU reference: `cpu::conv2d`.

use std::fmt::Write;

use crate::ops::conv::{Activation, Epilogue};
use crate::ops::matmul_subgroup::{block_grid, subgroup_grid};
use crate::ops::template::{fill, vec4_of};

const TEMPLATE: &str = include_str!("../../../shaders/conv2d_subgroup.wgsl");

/// Pixels one lane computes.
const PIX: usize = 8;
/// Lanes per subgroup.
const LANES: usize = 8;
/// Reduction steps unrolled per loop iteration.
const UNROLL: usize = 1;

/// Which convolution pass a kernel computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConvPass {
    /// y = conv(x, w) + b, optional SiLU.
    Forward,
    /// dx from dy and w.
    Data,
    /// Partial sums of dw from x and dy over one chunk of output pixels per workgroup z.
    Weight,
}

/// One subgroup conv kernel: a pass and the channels per subgroup (16 or 32).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvSubgroupVariant {
    /// The pass.
    pub pass: ConvPass,
    /// The forward's epilogue ([`Epilogue::PLAIN`] for the gradients, which do not use it).
    pub epilogue: Epilogue,
    /// Output channels per subgroup: 16 or 32.
    pub tn: usize,
    /// Forward and data gradient: the weights come pre-transposed, so the lane's 4 channels are
    /// one vec4 load (forward `[Ci, KH·KW, Co]`, data gradient `[Co, KH·KW, Ci]`; needs the
    /// output channels to be a multiple of 4). Unused by the weight gradient.
    pub vw: bool,
    /// Forward and data gradient of a stride-1 convolution 3 taps wide whose rows (forward:
    /// output rows, data gradient: input rows) are a multiple of 8 pixels: a lane's 8 pixels are
    /// consecutive in one row, so the 3 horizontal taps share the 10 values they gather
    /// (10 loads per kernel row and reduction channel instead of 24). Unused by the weight
    /// gradient.
    pub row3: bool,
}

impl ConvSubgroupVariant {
    /// Every variant, for shader validation tests.
    pub fn all() -> Vec<ConvSubgroupVariant> {
        let mut all = Vec::new();
        for pass in [ConvPass::Forward, ConvPass::Data, ConvPass::Weight] {
            let epilogues = match pass {
                ConvPass::Forward => Epilogue::all().to_vec(),
                _ => vec![Epilogue::PLAIN],
            };
            for epilogue in epilogues {
                for tn in [16, 32] {
                    for vw in [false, true] {
                        for row3 in [false, true] {
                            if !((vw || row3) && pass == ConvPass::Weight) {
                                all.push(ConvSubgroupVariant {
                                    pass,
                                    epilogue,
                                    tn,
                                    vw,
                                    row3,
                                });
                            }
                        }
                    }
                }
            }
        }
        all
    }

    /// The variant for `channels` output channels of `pass`.
    pub fn for_channels(pass: ConvPass, channels: usize) -> Self {
        ConvSubgroupVariant {
            pass,
            epilogue: Epilogue::PLAIN,
            tn: if channels <= 16 { 16 } else { 32 },
            vw: pass != ConvPass::Weight && channels.is_multiple_of(4),
            row3: false,
        }
    }

    /// The bindings of its entry point `main`: the forward's depend on the epilogue.
    pub(crate) fn bindings(self) -> &'static [crate::device::Binding] {
        match self.pass {
            ConvPass::Forward => self.epilogue.forward_bindings(),
            _ => crate::ops::conv::GRADIENT,
        }
    }

    /// The kernel's label (in profiles and errors).
    pub fn label(self) -> &'static str {
        match self.pass {
            ConvPass::Forward => "conv2d_subgroup.forward",
            ConvPass::Data => "conv2d_subgroup.backward_data",
            ConvPass::Weight => "conv2d_subgroup.backward_weight",
        }
    }

    /// Pipeline cache key.
    pub fn key(self) -> String {
        let epilogue = match self.pass {
            ConvPass::Forward => format!(".{}", self.epilogue.key()),
            _ => String::new(),
        };
        format!(
            "conv2d_subgroup.{:?}{epilogue}.tn{}.vw{}.row{}",
            self.pass, self.tn, self.vw as u8, self.row3 as u8
        )
    }

    /// (SM, workgroups) for `pixels` × `channels` outputs.
    pub fn grid(self, pixels: usize, channels: usize) -> (u32, [u32; 3]) {
        subgroup_grid(pixels, channels, LANES * PIX, self.tn, 1)
    }

    /// The weight gradient's grid for a `cols` × `channels` dW: (SM, KS, workgroups), where KS
    /// (1, 2, 4 or 8) subgroups of a workgroup share each output block, each summing its own
    /// chunk of pixels, so a small dW (e.g. 144 × 16) does not leave most lanes on padding.
    pub fn weight_grid(self, cols: usize, channels: usize) -> (u32, u32, [u32; 3]) {
        let (ks, (sm, groups, _)) = [1usize, 2, 4, 8]
            .into_iter()
            .map(|ks| {
                (
                    ks,
                    block_grid(cols, channels, LANES * PIX, self.tn, 1, 8 / ks),
                )
            })
            .min_by_key(|&(ks, (_, _, area))| (area, ks))
            .expect("four candidates");
        (sm, ks as u32, groups)
    }

    /// The WGSL source of this variant.
    pub fn source(self) -> String {
        self.source_gathering(false)
    }

    /// The source of this variant reading an f16 input x (`src`), to be passed through
    /// [`crate::ops::template::with_f16_inputs`]: the row-blocked forward gathers each kernel
    /// row's 10 values of a channel from 6 words of f16 pairs (`load_src_pair`) instead of 10
    /// loads (docs/experiments.md, "Packed f16 loads on lavapipe"); the others are
    /// [`ConvSubgroupVariant::source`].
    pub fn source_reading_f16_x(self) -> String {
        self.source_gathering(self.row3 && self.pass == ConvPass::Forward)
    }

    /// The source; `pairs`: the row-blocked gather reads f16 pairs.
    fn source_gathering(self, pairs: bool) -> String {
        if self.pass == ConvPass::Weight {
            return self.weight_source();
        }
        let k = Names::new(self);
        let mut b = String::new();
        let w = &mut |ind: usize, line: String| {
            let _ = writeln!(b, "{}{line}", "    ".repeat(ind));
        };
        let npix = if k.fwd { "c.n * ohw" } else { "c.n * hw" };
        w(1, format!("let npix = {npix};"));
        if self.row3 {
            row3_pixels(w, k.fwd);
        } else {
            general_pixels(w, k.fwd);
        }
        // Weight rows of the lane's 4 channels (forward: w[co, ·]; data: w[·, ci]), or with
        // transposed weights the lane's vec4 column.
        if self.vw {
            w(
                1,
                format!("let cq = min(n0 / 4u + wq, {} / 4u - 1u);", k.outc),
            );
        } else {
            for l in 0..4 {
                let e = if k.fwd {
                    format!("min(n0 + 4u * wq + {l}u, c.co - 1u) * c.ci * kk")
                } else {
                    format!("min(n0 + 4u * wq + {l}u, c.ci - 1u) * kk")
                };
                w(1, format!("let wr{l} = {e};"));
            }
        }
        for i in 0..PIX {
            for qq in 0..k.q {
                w(1, format!("var c{i}_{qq} = vec4<f32>(0.0);"));
            }
        }
        if self.row3 {
            row3_loop(w, &k, self.vw, pairs);
        } else {
            general_loop(w, &k, self.vw);
        }
        // Epilogue. The forward's bias of the subgroup's channels, loaded once (clamped past Co).
        let with_bias = k.fwd && self.epilogue.bias;
        if with_bias {
            for qq in 0..k.q {
                let v = vec4_of(|l| format!("bias[min(n0 + {}u, c.co - 1u)]", 4 * qq + l));
                w(1, format!("let bias{qq} = {v};"));
            }
        }
        for i in 0..PIX {
            w(1, format!("if (r0 + {i}u < npix) {{"));
            let img = if k.fwd { "ohw" } else { "hw" };
            w(2, format!("let img{i} = (r0 + {i}u) / {img};"));
            for qq in 0..k.q {
                for l in 0..4 {
                    let ch = format!("n0 + {}u", 4 * qq + l);
                    let e = ["x", "y", "z", "w"][l];
                    let v = if with_bias {
                        format!("c{i}_{qq}.{e} + bias{qq}.{e}")
                    } else {
                        format!("c{i}_{qq}.{e}")
                    };
                    w(2, format!("if ({ch} < {}) {{", k.outc));
                    if k.fwd {
                        w(
                            3,
                            format!("store_forward((img{i} * c.co + {ch}) * ohw + rr{i}, {v});"),
                        );
                    } else {
                        w(
                            3,
                            format!("dst[(img{i} * c.ci + {ch}) * hw + rr{i}] = {v};"),
                        );
                    }
                    w(2, "}".into());
                }
            }
            w(1, "}".into());
        }
        self.fill(k.q, &b)
    }

    /// The template filled with this variant's element type, widths, body and epilogue.
    fn fill(self, q: usize, body: &str) -> String {
        let store = match self.epilogue.act {
            Activation::Silu => "    pre[o] = z;\n    dst[o] = silu(z);",
            Activation::Identity => "    dst[o] = z;",
        };
        fill(
            TEMPLATE,
            &[
                ("W_ELEM", if self.vw { "vec4<f32>" } else { "f32" }),
                ("TN", &self.tn.to_string()),
                ("Q", &q.to_string()),
                ("BODY", body),
                ("STORE_FORWARD", store),
            ],
        )
    }

    /// The weight-gradient kernel: each lane 8 columns (ci, kh, kw) of dW, the subgroup TN output
    /// channels; KS subgroups (param 16) share a block, and chunk k = z·KS + (subgroup % KS) sums
    /// the output pixels [k·chunk, (k+1)·chunk) (params 14, 15: chunk and the number of output
    /// pixels) into its own slice of `dst`, which the host then sums.
    fn weight_source(self) -> String {
        let q = self.tn / 4;
        let ks = LANES / q; // output pixels per step
        let mut b = String::new();
        let w = &mut |ind: usize, line: String| {
            let _ = writeln!(b, "{}{line}", "    ".repeat(ind));
        };
        // The block and chunk of this subgroup (shadowing the template's r0 and n0).
        w(1, "{".into());
        w(1, "let ks = params.ks;".into());
        w(1, "let sgb = sg / ks;".into());
        w(
            1,
            "let r0 = ((wg.x * sm + sgb % sm) * 8u + lane) * 8u;".into(),
        );
        w(
            1,
            format!(
                "let n0 = (wg.y * ((8u / ks) / sm) + sgb / sm) * {}u;",
                self.tn
            ),
        );
        w(1, "let zc = wg.z * ks + sg % ks;".into());
        w(1, "let ncols = c.ci * kk;".into());
        w(1, "let chunk = params.chunk;".into());
        w(1, "let total = params.pixels;".into());
        w(1, "let p0 = zc * chunk;".into());
        w(1, "let p1 = min(p0 + chunk, total);".into());
        // The lane's columns: channel offset and tap displacement.
        for j in 0..PIX {
            w(1, format!("let cc{j} = min(r0 + {j}u, ncols - 1u);"));
            w(1, format!("let xo{j} = (cc{j} / kk) * hw;"));
            w(1, format!("let dh{j} = i32((cc{j} % kk) / c.kw) - c.pad;"));
            w(1, format!("let dw{j} = i32((cc{j} % kk) % c.kw) - c.pad;"));
        }
        // The lane's 4 output channels of dy.
        for l in 0..4 {
            w(
                1,
                format!("let co{l} = min(n0 + 4u * wq + {l}u, c.co - 1u) * ohw;"),
            );
        }
        for j in 0..PIX {
            for qq in 0..q {
                w(1, format!("var c{j}_{qq} = vec4<f32>(0.0);"));
            }
        }
        // Pixel counters of the step's first pixel: image, row, column (no division in the loop).
        w(1, "var pn = p0 / ohw;".into());
        w(1, "var py = (p0 % ohw) / c.ow;".into());
        w(1, "var px = (p0 % ohw) % c.ow;".into());
        w(1, format!("for (var pp = p0; pp < p1; pp += {ks}u) {{"));
        for s in 0..ks {
            if s > 0 {
                // Advance one pixel.
                w(2, "px += 1u;".into());
                w(
                    2,
                    "if (px == c.ow) { px = 0u; py += 1u; if (py == c.oh) { py = 0u; pn += 1u; } }"
                        .into(),
                );
            }
            w(2, format!("let ok{s} = select(0.0, 1.0, pp + {s}u < p1);"));
            w(
                2,
                format!("let pix{s} = min(pn, c.n - 1u) * ohw + py * c.ow + px;"),
            );
            w(2, format!("let xb{s} = min(pn, c.n - 1u) * c.ci * hw;"));
            for j in 0..PIX {
                w(2, format!("let y{j}_{s} = i32(py * c.s) + dh{j};"));
                w(2, format!("let x{j}_{s} = i32(px * c.s) + dw{j};"));
                w(
                    2,
                    format!("let in{j}_{s} = in_range(y{j}_{s}, c.h) && in_range(x{j}_{s}, c.w);"),
                );
                w(2, format!("let v{j}_{s} = src[select(0u, xb{s} + xo{j} + u32(y{j}_{s}) * c.w + u32(x{j}_{s}), in{j}_{s})] * select(0.0, ok{s}, in{j}_{s});"));
            }
            // dy at this pixel for the 4 channels of the lanes with kq == s.
            w(
                2,
                format!("let dy{s} = min(pn, c.n - 1u) * c.co * ohw + py * c.ow + px;"),
            );
        }
        w(2, "px += 1u;".into());
        w(
            2,
            "if (px == c.ow) { px = 0u; py += 1u; if (py == c.oh) { py = 0u; pn += 1u; } }".into(),
        );
        // Each lane loads dy at the pixel of its own step kq (ks is 1 or 2).
        let db = if ks == 1 {
            "dy0"
        } else {
            "select(dy0, dy1, kq == 1u)"
        };
        w(2, format!("let db = {db};"));
        w(
            2,
            "let bl = vec4<f32>(wsrc[db + co0], wsrc[db + co1], wsrc[db + co2], wsrc[db + co3]);"
                .into(),
        );
        for s in 0..ks {
            for qq in 0..q {
                let b = format!("b{s}_{qq}");
                broadcast_fmas(w, 2, (&b, "bl", s * q + qq), qq, |j| format!("v{j}_{s}"));
            }
        }
        w(1, "}".into());
        // Partial dW of this chunk: dst[z, co, col].
        w(1, "let part = zc * c.co * ncols;".into());
        for j in 0..PIX {
            w(1, format!("if (r0 + {j}u < ncols) {{"));
            for qq in 0..q {
                for l in 0..4 {
                    let ch = format!("n0 + {}u", 4 * qq + l);
                    let v = format!("c{j}_{qq}.{}", ["x", "y", "z", "w"][l]);
                    w(
                        2,
                        format!(
                            "if ({ch} < c.co) {{ dst[part + ({ch}) * ncols + r0 + {j}u] = {v}; }}"
                        ),
                    );
                }
            }
            w(1, "}".into());
        }
        w(1, "}".into());
        self.fill(q, &b)
    }
}

/// Emits one line of WGSL at an indentation level.
type Emit<'a> = dyn FnMut(usize, String) + 'a;

/// The names a forward or data-gradient kernel body uses for its pass.
struct Names {
    fwd: bool,
    /// vec4s of channels per lane.
    q: usize,
    /// Reduction channels per step.
    ks: usize,
    /// The reduction channel count.
    red: &'static str,
    /// The output channel count.
    outc: &'static str,
    /// The reduction-channel stride in w (untransposed).
    wstride: &'static str,
    /// The reduction-channel stride in the gathered source.
    sstride: &'static str,
}

impl Names {
    fn new(v: ConvSubgroupVariant) -> Names {
        let fwd = v.pass == ConvPass::Forward;
        let q = v.tn / 4;
        Names {
            fwd,
            q,
            ks: LANES / q,
            red: if fwd { "c.ci" } else { "c.co" },
            outc: if fwd { "c.co" } else { "c.ci" },
            wstride: if fwd { "kk" } else { "c.ci * kk" },
            sstride: if fwd { "hw" } else { "ohw" },
        }
    }

    /// `let bl{u} = …`: the lane's 4 channels of the weight at reduction channel
    /// `r + {first} + kq` and tap `tap`.
    fn weight_load(&self, vw: bool, u: &str, first: usize, tap: &str) -> String {
        let (red, outc, ws) = (self.red, self.outc, self.wstride);
        let ch = format!("min(r + {first}u + kq, {red} - 1u)");
        if vw {
            format!("let bl{u} = wsrc[({ch} * kk + {tap}) * ({outc} / 4u) + cq];")
        } else {
            let wc = format!("{ch} * {ws} + {tap}");
            format!("let bl{u} = vec4<f32>(wsrc[wr0 + {wc}], wsrc[wr1 + {wc}], wsrc[wr2 + {wc}], wsrc[wr3 + {wc}]);")
        }
    }

    /// Gathers `count` source values of reduction channel r + t: `let so{t} = …` (its offset),
    /// `ok{t}` (1 when that channel exists; t > 0), then `let x{j}_{t} = src[o{j} + so{t}]`
    /// masked by `m{j}` (and `ok{t}`) for j in 0..count.
    fn gather_source(&self, w: &mut Emit<'_>, t: usize, count: usize) {
        self.channel_offset(w, t);
        for j in 0..count {
            let mask = Self::mask(j, t);
            w(3, format!("let x{j}_{t} = src[o{j} + so{t}] * {mask};"));
        }
    }

    /// `let so{t} = …`, the source offset of reduction channel r + t (clamped past the last),
    /// and for t > 0 `ok{t}`, 1 when that channel exists.
    fn channel_offset(&self, w: &mut Emit<'_>, t: usize) {
        let (red, ss) = (self.red, self.sstride);
        if t == 0 {
            w(3, format!("let so{t} = r * {ss};"));
        } else {
            w(3, format!("let so{t} = min(r + {t}u, {red} - 1u) * {ss};"));
            w(
                3,
                format!("let ok{t} = select(0.0, 1.0, r + {t}u < {red});"),
            );
        }
    }

    /// The mask of gathered value j of channel r + t: its position's, and the channel's.
    fn mask(j: usize, t: usize) -> String {
        if t == 0 {
            format!("m{j}")
        } else {
            format!("m{j} * ok{t}")
        }
    }

    /// [`Names::gather_source`] for a row-blocked forward whose source holds f16 pairs: the
    /// `count` consecutive values of channel r + t from row offset `ro` and column `col` come
    /// from `count / 2 + 1` words, shifted by one value when the first is the high half of its
    /// word. Each word index is clamped at 0 on its own (a value left of the row is masked).
    fn gather_source_pairs(&self, w: &mut Emit<'_>, t: usize, count: usize) {
        self.channel_offset(w, t);
        // Element e is half e & 1 of word e / 2 (rounded down: e may be negative by the padding).
        w(3, format!("let e{t} = i32(ro + so{t}) + col;"));
        w(3, format!("let odd{t} = (e{t} & 1) != 0;"));
        w(3, format!("let fw{t} = (e{t} - select(0, 1, odd{t})) / 2;"));
        let words = count / 2 + 1;
        for k in 0..words {
            w(
                3,
                format!("let p{k}_{t} = load_src_pair(u32(max(fw{t} + {k}, 0)));"),
            );
        }
        let half = |v: usize| format!("p{}_{t}.{}", v / 2, ["x", "y"][v % 2]);
        for j in 0..count {
            let mask = Self::mask(j, t);
            let (even, odd) = (half(j), half(j + 1));
            w(
                3,
                format!("let x{j}_{t} = select({even}, {odd}, odd{t}) * {mask};"),
            );
        }
    }
}

/// `let {b} = subgroupBroadcast({bl}, lane)` (one lane's 4 weights), then for each of the 8
/// pixels i: `c{i}_{qq} += x(i) · b`.
fn broadcast_fmas(
    w: &mut Emit<'_>,
    ind: usize,
    (b, bl, lane): (&str, &str, usize),
    qq: usize,
    x: impl Fn(usize) -> String,
) {
    w(ind, format!("let {b} = subgroupBroadcast({bl}, {lane}u);"));
    for i in 0..PIX {
        let xi = x(i);
        w(
            ind,
            format!("c{i}_{qq} = fma(vec4<f32>({xi}), {b}, c{i}_{qq});"),
        );
    }
}

/// Each lane's 8 pixels, each with its own image, row and column (any geometry).
fn general_pixels(w: &mut Emit<'_>, fwd: bool) {
    for i in 0..PIX {
        w(1, format!("let pc{i} = min(r0 + {i}u, npix - 1u);"));
        if fwd {
            w(1, format!("let base{i} = (pc{i} / ohw) * c.ci * hw;"));
            w(1, format!("let rr{i} = pc{i} % ohw;"));
            w(1, format!("let py{i} = i32((rr{i} / c.ow) * c.s) - c.pad;"));
            w(1, format!("let px{i} = i32((rr{i} % c.ow) * c.s) - c.pad;"));
        } else {
            w(1, format!("let base{i} = (pc{i} / hw) * c.co * ohw;"));
            w(1, format!("let rr{i} = pc{i} % hw;"));
            w(1, format!("let py{i} = i32(rr{i} / c.w) + c.pad;"));
            w(1, format!("let px{i} = i32(rr{i} % c.w) + c.pad;"));
        }
    }
}

/// The general reduction: for every tap, each lane gathers its 8 pixels' inputs.
fn general_loop(w: &mut Emit<'_>, k: &Names, vw: bool) {
    let (q, ks, red) = (k.q, k.ks, k.red);
    w(1, "for (var kh = 0u; kh < c.kh; kh++) {".into());
    w(1, "for (var kw = 0u; kw < c.kw; kw++) {".into());
    w(2, "let tap = kh * c.kw + kw;".into());
    for i in 0..PIX {
        if k.fwd {
            w(2, format!("let y{i} = py{i} + i32(kh);"));
            w(2, format!("let x{i} = px{i} + i32(kw);"));
            w(
                2,
                format!("let in{i} = in_range(y{i}, c.h) && in_range(x{i}, c.w);"),
            );
            w(
                2,
                format!("let o{i} = select(0u, base{i} + u32(y{i}) * c.w + u32(x{i}), in{i});"),
            );
        } else {
            // The output pixel this input pixel's tap comes from, when the stride divides.
            w(2, format!("let ty{i} = py{i} - i32(kh);"));
            w(2, format!("let tx{i} = px{i} - i32(kw);"));
            w(2, format!("let y{i} = ty{i} / i32(c.s);"));
            w(2, format!("let x{i} = tx{i} / i32(c.s);"));
            w(2, format!("let in{i} = ty{i} >= 0 && tx{i} >= 0 && y{i} * i32(c.s) == ty{i} && x{i} * i32(c.s) == tx{i} && y{i} < i32(c.oh) && x{i} < i32(c.ow);"));
            w(
                2,
                format!("let o{i} = select(0u, base{i} + u32(y{i}) * c.ow + u32(x{i}), in{i});"),
            );
        }
        w(2, format!("let m{i} = select(0.0, 1.0, in{i});"));
    }
    // UNROLL groups of `ks` reduction channels per iteration; past the last one the source
    // reads as 0 (the clamped weight it meets is finite).
    w(
        2,
        format!("for (var r = 0u; r < {red}; r += {}u) {{", UNROLL * ks),
    );
    for u in 0..UNROLL {
        w(3, k.weight_load(vw, &u.to_string(), u * ks, "tap"));
        for s in 0..ks {
            let t = u * ks + s;
            k.gather_source(w, t, PIX);
            for qq in 0..q {
                let (b, bl) = (format!("b{t}_{qq}"), format!("bl{u}"));
                broadcast_fmas(w, 3, (&b, &bl, s * q + qq), qq, |i| format!("x{i}_{t}"));
            }
        }
    }
    w(2, "}".into());
    w(1, "}".into());
    w(1, "}".into());
}

/// Row-blocked pixels (stride 1, rows a multiple of 8): the lane's 8 pixels r0 … r0 + 7 lie in
/// one row, so one image offset, one row and a first column describe them all. `col` is the
/// first of the 10 source columns the lane gathers: forward x − pad, data gradient x + pad − 2
/// (input pixel x reads output column x + pad − kw for kw = 2, 1, 0).
fn row3_pixels(w: &mut Emit<'_>, fwd: bool) {
    // A padding lane (r0 ≥ npix, a multiple of 8) computes the last 8 pixels again, unstored.
    w(1, "let rb = min(r0, npix - 8u);".into());
    if fwd {
        w(1, "let base = (rb / ohw) * c.ci * hw;".into());
        w(1, "let rr = rb % ohw;".into());
        w(1, "let py = i32(rr / c.ow) - c.pad;".into());
        w(1, "let col = i32(rr % c.ow) - c.pad;".into());
    } else {
        w(1, "let base = (rb / hw) * c.co * ohw;".into());
        w(1, "let rr = rb % hw;".into());
        w(1, "let py = i32(rr / c.w) + c.pad;".into());
        w(1, "let col = i32(rr % c.w) + c.pad - 2;".into());
    }
    for i in 0..PIX {
        w(1, format!("let rr{i} = rr + {i}u;"));
    }
}

/// Row-blocked reduction for 3-tap-wide kernels: per kernel row and reduction channel each
/// lane gathers 10 consecutive source values once, and pixel i's tap kw uses value i + kw
/// (forward) or i + 2 − kw (data gradient). `pairs`: the forward's source holds f16 pairs.
fn row3_loop(w: &mut Emit<'_>, k: &Names, vw: bool, pairs: bool) {
    let (q, ks, red) = (k.q, k.ks, k.red);
    let span = PIX + 2;
    w(1, "for (var kh = 0u; kh < c.kh; kh++) {".into());
    if k.fwd {
        w(2, "let y = py + i32(kh);".into());
        w(2, "let row_in = in_range(y, c.h);".into());
        w(2, "let ro = base + u32(max(y, 0)) * c.w;".into());
    } else {
        w(2, "let y = py - i32(kh);".into());
        w(2, "let row_in = in_range(y, c.oh);".into());
        w(2, "let ro = base + u32(max(y, 0)) * c.ow;".into());
    }
    let cols = if k.fwd { "c.w" } else { "c.ow" };
    for j in 0..span {
        w(
            2,
            format!("let in{j} = row_in && in_range(col + {j}, {cols});"),
        );
        w(
            2,
            format!("let o{j} = select(0u, ro + u32(col + {j}), in{j});"),
        );
        w(2, format!("let m{j} = select(0.0, 1.0, in{j});"));
    }
    w(2, format!("for (var r = 0u; r < {red}; r += {ks}u) {{"));
    for kw in 0..3 {
        w(
            3,
            k.weight_load(vw, &kw.to_string(), 0, &format!("kh * 3u + {kw}u")),
        );
    }
    for t in 0..ks {
        if pairs {
            k.gather_source_pairs(w, t, span);
        } else {
            k.gather_source(w, t, span);
        }
        for kw in 0..3 {
            for qq in 0..q {
                let (b, bl) = (format!("b{t}_{kw}_{qq}"), format!("bl{kw}"));
                // Pixel i's tap kw reads gathered value i + kw (forward) or i + 2 − kw (data).
                let j = |i: usize| if k.fwd { i + kw } else { i + 2 - kw };
                broadcast_fmas(w, 3, (&b, &bl, t * q + qq), qq, |i| {
                    format!("x{}_{t}", j(i))
                });
            }
        }
    }
    w(2, "}".into());
    w(1, "}".into());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_weight_gradient_shares_blocks_between_subgroups() {
        let v = ConvSubgroupVariant::for_channels(ConvPass::Weight, 16);
        // The main job's 16→16 3×3 layer: dW is 144 × 16. One subgroup per block pads it to
        // 192 × 16 instead of 512 × 16, and the 8 subgroups take 8 pixel chunks.
        assert_eq!(v.weight_grid(144, 16), (1, 8, [3, 1, 1]));
        // A 64→64 layer: 576 × 64 is tiled without padding (9 × 2 blocks of 64 × 32, 4 chunks
        // per workgroup), where 8 blocks per workgroup would pad it to 768 × 64.
        let wide = ConvSubgroupVariant::for_channels(ConvPass::Weight, 64);
        assert_eq!(wide.weight_grid(576, 64), (1, 4, [9, 1, 1]));
    }
}

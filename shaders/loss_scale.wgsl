// Dynamic loss scaling (as PyTorch's GradScaler), decided on the GPU so that a training step
// never reads back: the optimizer's factor and skip flag from the scaled gradients' sum of
// squares, then the scale's own update. The scaler's state is a 4-float tensor:
// [scale, clean steps since the last change, steps skipped in all, 1 if the last step skipped].

// True for ±Inf and NaN: the exponent bits all set (no isinf/isnan in WGSL, and comparisons
// with NaN may be optimised away).
fn not_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u;
}

// ---- out = [factor, ‖g‖ unscaled, skip] over `slots` partial sums of squares of the scaled
// gradients (optim.wgsl's sum_squares): factor = clip / scale, or 0 with skip = 1 when a
// gradient overflowed ----
struct ScaledClipParams { slots: u32, max_norm: f32 } // max_norm ≤ 0: no clipping
@group(0) @binding(0) var<uniform> sclip: ScaledClipParams;
@group(0) @binding(1) var<storage, read> spart: array<f32>;
@group(0) @binding(2) var<storage, read> sstate: array<f32>;
@group(0) @binding(3) var<storage, read_write> sout: array<f32>;

@compute @workgroup_size(1)
fn scaled_clip() {
    var s = 0.0;
    for (var i = 0u; i < sclip.slots; i++) { s += spart[i]; }
    let scale = sstate[0];
    let bad = not_finite(s);
    let norm = sqrt(s) / scale;
    var clip = 1.0;
    if (sclip.max_norm > 0.0) { clip = min(1.0, sclip.max_norm / (norm + 1e-6)); }
    sout[0] = select(clip / scale, 0.0, bad);
    sout[1] = norm;
    sout[2] = select(0.0, 1.0, bad);
}

// ---- the scale after a step: halve (backoff) on overflow, grow after growth_interval clean
// steps ----
struct ScalerParams { growth_interval: u32, growth: f32, backoff: f32 }
@group(0) @binding(0) var<uniform> scaler: ScalerParams;
@group(0) @binding(1) var<storage, read> ustats: array<f32>;
@group(0) @binding(2) var<storage, read_write> ustate: array<f32>;

@compute @workgroup_size(1)
fn scaler_update() {
    let skipped = ustats[2] != 0.0;
    if (skipped) {
        ustate[0] = max(ustate[0] * scaler.backoff, 1.0 / 16777216.0);
        ustate[1] = 0.0;
        ustate[2] += 1.0;
    } else {
        ustate[1] += 1.0;
        if (ustate[1] >= f32(scaler.growth_interval)) {
            ustate[0] *= scaler.growth;
            ustate[1] = 0.0;
        }
    }
    ustate[3] = select(0.0, 1.0, skipped);
}

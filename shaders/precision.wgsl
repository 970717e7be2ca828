// Casts between f32 and f16. An f16 tensor is stored two elements to a 32-bit word (element 2k
// in the low half, 2k + 1 in the high half), as pack2x16float writes them, so no shader-f16
// feature is needed. One invocation per two words (four elements).

struct CastParams { n: u32 } // elements (not words)
@group(0) @binding(0) var<uniform> cp: CastParams;

// ---- to_f16: f32 elements → packed f16 words ----
@group(0) @binding(1) var<storage, read> fx: array<f32>;
@group(0) @binding(2) var<storage, read_write> fh: array<u32>;

// f16_bits (the rounding) is in the prelude, shared with the kernels that write f16 outputs.

// The word of elements i, i + 1 (the high half zero past the last element).
fn f16_word(i: u32) -> u32 {
    let hi = select(0u, f16_bits(fx[min(i + 1u, cp.n - 1u)]), i + 1u < cp.n);
    return f16_bits(fx[i]) | (hi << 16u);
}

@compute @workgroup_size(256)
fn to_f16(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let w = 2u * gid(wid, nwg, lid);
    let i = 2u * w;
    if (i >= cp.n) { return; }
    fh[w] = f16_word(i);
    if (i + 2u < cp.n) { fh[w + 1u] = f16_word(i + 2u); }
}

// ---- to_f32: packed f16 words → f32 elements (exact) ----
@group(0) @binding(1) var<storage, read> hx: array<u32>;
@group(0) @binding(2) var<storage, read_write> hy: array<f32>;

@compute @workgroup_size(256)
fn to_f32(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let w = 2u * gid(wid, nwg, lid);
    for (var k = 0u; k < 2u; k++) {
        let i = 2u * (w + k);
        if (i >= cp.n) { return; }
        let v = unpack2x16float(hx[w + k]);
        hy[i] = v.x;
        if (i + 1u < cp.n) { hy[i + 1u] = v.y; }
    }
}

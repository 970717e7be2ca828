// The attention forward with rows in named vec4 registers and every loop over the head dimension
// unrolled (loops indexing private arrays keep them in memory on CPU adapters), TQ query rows
// per thread. Appended to attention.wgsl (whose D, params and lse it uses) when D is a multiple
// of 4; a template: engine/src/ops/attention.rs fills TQ and the unrolled BODY.
@group(0) @binding(1) var<storage, read> qv: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> kv: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> vv: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> ov: array<vec4<f32>>;

@compute @workgroup_size(64)
fn attention_forward_vec(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let s = params.seq;
    let blocks = (s + {{TQ}}u - 1u) / {{TQ}}u;
    let tid = thread_id(wid, nwg, lid);
    if (tid >= params.bh * blocks) { return; }
    let bh = tid / blocks;
    let i0 = (tid % blocks) * {{TQ}}u;
    let base = bh * s * D;
{{BODY}}
}

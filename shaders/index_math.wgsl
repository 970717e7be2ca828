// Integer index arithmetic shared by the kernels (prepended to every static shader by
// `ops::kernel`). CPU adapters such as lavapipe have no SIMD integer divide: a `/` or `%` by a
// runtime value runs lane by lane (~25 cycles each), which made it the main cost of elementwise,
// layout and norm kernels. These use f32 arithmetic instead.

// ⌊i / d⌋, exact for every u32 i and 1 ≤ d < 2^30: an f32 estimate (off by at most 2^10),
// a second estimate from its remainder (off by at most one), then a ±1 fix.
fn udiv(i: u32, d: u32) -> u32 {
    let rcp = 1.0 / f32(d);
    var q = u32(f32(i) * rcp);
    // The remainder i − q·d wraps in u32; as i32 it is small (|q error| ≤ 2^10).
    q += bitcast<u32>(i32(floor(f32(bitcast<i32>(i - q * d)) * rcp)));
    let r = bitcast<i32>(i - q * d);
    q = select(q, q - 1u, r < 0);
    return select(q, q + 1u, r >= i32(d));
}

// i mod d, with the range of `udiv`.
fn urem(i: u32, d: u32) -> u32 {
    return i - udiv(i, d) * d;
}

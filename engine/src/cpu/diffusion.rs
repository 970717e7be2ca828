//! Noise-schedule ops: Philox normals, q_sample, DDPM/DDIM steps, timestep embedding: the f64
//! reference of `ops::diffusion`.

/// Philox4x32-10 (Salmon et al. 2011), the counter-based generator of the GPU's `randn`.
pub fn philox(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let (mut c, mut k) = (counter, key);
    for _ in 0..10 {
        let p0 = 0xD251_1F53u64 * c[0] as u64;
        let p1 = 0xCD9E_8D57u64 * c[2] as u64;
        c = [
            ((p1 >> 32) as u32) ^ c[1] ^ k[0],
            p1 as u32,
            ((p0 >> 32) as u32) ^ c[3] ^ k[1],
            p0 as u32,
        ];
        k = [
            k[0].wrapping_add(0x9E37_79B9),
            k[1].wrapping_add(0xBB67_AE85),
        ];
    }
    c
}

/// The i-th standard normal of (seed, stream), exactly as the GPU computes it (Box–Muller on a
/// Philox block; uniforms in (0, 1] with 24 bits).
pub fn normal_at(i: u64, seed: u64, stream: u64) -> f64 {
    let r = philox(
        [(i / 4) as u32, stream as u32, (stream >> 32) as u32, 0],
        [seed as u32, (seed >> 32) as u32],
    );
    let unit = |u: u32| ((u >> 8) as f64 + 1.0) / 16_777_216.0;
    let pair = ((i & 3) >> 1) as usize;
    let (u1, u2) = (unit(r[2 * pair]), unit(r[2 * pair + 1]));
    let a = 2.0 * std::f64::consts::PI * u2;
    (-2.0 * u1.ln()).sqrt() * if i & 1 == 1 { a.sin() } else { a.cos() }
}

/// `√ᾱ[t_b]·x0 + √(1−ᾱ[t_b])·ε + scale_b·agg`, table rows `(√ᾱ, √(1−ᾱ))`.
pub fn q_sample(
    x0: &[f64],
    eps: &[f64],
    t: &[u32],
    table: &[f64],
    agg: Option<(&[f64], &[f64])>,
) -> Vec<f64> {
    let per = x0.len() / t.len();
    (0..x0.len())
        .map(|i| {
            let (b, row) = (i / per, t[i / per] as usize * 2);
            table[row] * x0[i] + table[row + 1] * eps[i] + agg.map_or(0.0, |(s, a)| s[b] * a[i])
        })
        .collect()
}

/// One DDPM step, x̂_0 form; table rows `(√ᾱ, √(1−ᾱ), c_x0, c_xt, σ)`; noise `z`. Returns (x_prev, x̂_0).
pub fn ddpm_step(
    x: &[f64],
    eps: &[f64],
    z: &[f64],
    t: &[u32],
    table: &[f64],
    agg: Option<(&[f64], &[f64])>,
    clip: f64,
) -> (Vec<f64>, Vec<f64>) {
    let per = x.len() / t.len();
    let mut out = vec![0.0; x.len()];
    let mut x0s = vec![0.0; x.len()];
    for i in 0..x.len() {
        let (b, r) = (i / per, t[i / per] as usize * 5);
        let mut x0 = (x[i] - table[r + 1] * eps[i]) / table[r];
        if clip > 0.0 {
            x0 = x0.clamp(-clip, clip);
        }
        x0s[i] = x0;
        out[i] = table[r + 2] * x0 + table[r + 3] * x[i] - agg.map_or(0.0, |(s, a)| s[b] * a[i])
            + table[r + 4] * z[i];
    }
    (out, x0s)
}

/// One DDIM step; table rows `(ᾱ_t, ᾱ_t', σ)`, aggregate scales `[B, 2]`. Returns (x_prev, x̂_0).
pub fn ddim_step(
    x: &[f64],
    eps: &[f64],
    z: &[f64],
    t: &[u32],
    table: &[f64],
    agg: Option<(&[f64], &[f64])>,
    clip: f64,
) -> (Vec<f64>, Vec<f64>) {
    let per = x.len() / t.len();
    let mut out = vec![0.0; x.len()];
    let mut x0s = vec![0.0; x.len()];
    for i in 0..x.len() {
        let (b, r) = (i / per, t[i / per] as usize * 3);
        let (ab, ab_prev, sigma) = (table[r], table[r + 1], table[r + 2]);
        let (c_t, c_prev) = agg.map_or((0.0, 0.0), |(s, a)| (s[2 * b] * a[i], s[2 * b + 1] * a[i]));
        let mut x0 = (x[i] - c_t - (1.0 - ab).sqrt() * eps[i]) / ab.sqrt();
        if clip > 0.0 {
            x0 = x0.clamp(-clip, clip);
        }
        x0s[i] = x0;
        out[i] = ab_prev.sqrt() * x0
            + c_prev
            + (1.0 - ab_prev - sigma * sigma).max(0.0).sqrt() * eps[i]
            + sigma * z[i];
    }
    (out, x0s)
}

/// Sinusoidal timestep embedding `[B] → [B, dim]` (see `ops::diffusion::timestep_embedding`).
pub fn timestep_embedding(
    t: &[u32],
    dim: usize,
    max_period: f64,
    shift: f64,
    flip: bool,
) -> Vec<f64> {
    let half = dim / 2;
    let mut out = vec![0.0; t.len() * dim];
    for (b, &tb) in t.iter().enumerate() {
        for j in 0..2 * half {
            let k = j % half;
            let arg = tb as f64 * (-(max_period.ln()) * k as f64 / (half as f64 - shift)).exp();
            out[b * dim + j] = if (j < half) != flip {
                arg.sin()
            } else {
                arg.cos()
            };
        }
    }
    out
}

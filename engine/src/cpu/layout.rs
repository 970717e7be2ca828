//! Layout ops: permute, slice, concat, gather rows: the f64 reference of `ops::layout`.

use super::elementwise::coords;

/// Axis permutation: output axis i is input axis `perm[i]`.
pub fn permute(x: &[f64], shape: &[usize], perm: &[usize]) -> Vec<f64> {
    let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let mut strides = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    coords(&out_shape)
        .map(|c| {
            x[c.iter()
                .zip(perm)
                .map(|(ci, &p)| ci * strides[p])
                .sum::<usize>()]
        })
        .collect()
}

/// Elements `start..start+len` along `axis`.
pub fn slice(x: &[f64], shape: &[usize], axis: usize, start: usize, len: usize) -> Vec<f64> {
    coords(shape)
        .zip(x)
        .filter(|(c, _)| c[axis] >= start && c[axis] < start + len)
        .map(|(_, v)| *v)
        .collect()
}

/// Concatenation along `axis`.
pub fn cat(parts: &[(&[f64], &[usize])], axis: usize) -> Vec<f64> {
    let outer: usize = parts[0].1[..axis].iter().product();
    let mut out = Vec::new();
    for o in 0..outer {
        for (x, sh) in parts {
            let block: usize = sh[axis..].iter().product();
            out.extend_from_slice(&x[o * block..(o + 1) * block]);
        }
    }
    out
}

/// Rows of a `[rows, dim]` table picked by `idx` (zero rows for indices out of range).
pub fn gather_rows(table: &[f64], dim: usize, idx: &[u32]) -> Vec<f64> {
    let rows = table.len() / dim;
    idx.iter()
        .flat_map(|&i| {
            let i = i as usize;
            if i < rows {
                table[i * dim..(i + 1) * dim].to_vec()
            } else {
                vec![0.0; dim]
            }
        })
        .collect()
}

/// Gradient of `gather_rows` with respect to the table.
pub fn gather_rows_backward(rows: usize, dim: usize, idx: &[u32], g: &[f64]) -> Vec<f64> {
    let mut dt = vec![0.0; rows * dim];
    for (n, &i) in idx.iter().enumerate() {
        if (i as usize) < rows {
            for d in 0..dim {
                dt[i as usize * dim + d] += g[n * dim + d];
            }
        }
    }
    dt
}

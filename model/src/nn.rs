//! Parameters and layers on engine ops: a [`ParamStore`] with hierarchical names (the names in a
//! checkpoint), and the building blocks of the U-Net: linear, conv, group norm + SiLU, residual
//! block with a time embedding, self-attention block. Initialisation follows PyTorch's defaults
//! (weights and biases U(±1/√fan_in); group norm γ = 1, β = 0), as the reference U-Net does.

use mtdiff_engine::ops::conv::Activation;
use mtdiff_engine::rng::CpuRng;
use mtdiff_engine::{Device, ParamArena, Tensor};

use crate::error::{Error, Result};

/// Named parameters in creation order; every tensor is a leaf that requires grad. A packed
/// store allocates them from one [`ParamArena`], so AdamW and the EMA update all of them in one
/// dispatch each.
pub struct ParamStore {
    device: Device,
    rng: CpuRng,
    params: Vec<(String, Tensor)>,
    arena: Option<ParamArena>,
}

impl ParamStore {
    /// An empty store on `device`, initialising from `seed`; each parameter its own buffer.
    pub fn new(device: &Device, seed: u64) -> ParamStore {
        ParamStore {
            device: device.clone(),
            rng: CpuRng::new(seed),
            params: Vec::new(),
            arena: None,
        }
    }

    /// An empty store whose parameters are packed in one arena of `capacity` elements (the
    /// [`ParamStore::packed_len`] of a store that made the same parameters).
    pub fn packed(device: &Device, seed: u64, capacity: usize) -> Result<ParamStore> {
        Ok(ParamStore {
            arena: Some(ParamArena::new(device, capacity)?),
            ..ParamStore::new(device, seed)
        })
    }

    /// The elements these parameters take packed in an arena (with alignment padding).
    pub fn packed_len(&self) -> usize {
        self.params
            .iter()
            .map(|(_, t)| ParamArena::slot_len(&self.device, t.numel()))
            .sum()
    }

    /// A parameter tensor holding `data`: from the arena when packed.
    fn make(&mut self, data: &[f32], shape: &[usize]) -> Result<Tensor> {
        Ok(match &mut self.arena {
            Some(arena) => arena.alloc(data, shape)?,
            None => Tensor::from_slice(&self.device, data, shape)?,
        })
    }

    /// The device the parameters live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The element count of `shape`, once the device has said a tensor of it fits (before its
    /// values are made on the host: a configuration of 10⁵ channels must be an error, not a
    /// host allocation of 10¹¹ floats).
    fn checked_len(&self, shape: &[usize]) -> Result<usize> {
        let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let bytes = n
            .and_then(|n| n.checked_mul(4))
            .map_or(u64::MAX, |b| b as u64);
        self.device.check_tensor_bytes(bytes)?;
        Ok(n.unwrap_or(0))
    }

    /// A parameter U(±bound) of `shape` named `name`.
    pub fn uniform(&mut self, name: &str, shape: &[usize], bound: f64) -> Result<Tensor> {
        let n = self.checked_len(shape)?;
        let data = self.rng.vec_range(n, -bound, bound);
        let t = self.make(&data, shape)?;
        self.insert(name, t)
    }

    /// A `[rows, dim]` embedding table whose first `rows − 1` rows are orthogonal, each of
    /// Euclidean norm `norm`, and whose last row is zero: every class token then starts equally
    /// far from every other and from the "none" token (which leaves the sum it joins unchanged).
    /// Only `dim` rows can be orthogonal: class rows beyond the first `dim` are random directions
    /// of norm `norm`.
    pub fn class_table(
        &mut self,
        name: &str,
        rows: usize,
        dim: usize,
        norm: f64,
    ) -> Result<Tensor> {
        self.checked_len(&[rows, dim])?;
        let classes = rows.saturating_sub(1);
        let mut basis: Vec<Vec<f64>> = Vec::with_capacity(rows);
        for _ in 0..classes {
            let mut v: Vec<f64> = (0..dim).map(|_| self.rng.normal()).collect();
            if basis.len() < dim {
                // Gram–Schmidt against the rows so far.
                for b in &basis {
                    let dot: f64 = v.iter().zip(b).map(|(x, y)| x * y).sum();
                    v.iter_mut().zip(b).for_each(|(x, y)| *x -= dot * y);
                }
            }
            let len = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
            v.iter_mut().for_each(|x| *x /= len);
            basis.push(v);
        }
        let mut data: Vec<f32> = basis
            .iter()
            .flat_map(|v| v.iter().map(|&x| (x * norm) as f32))
            .collect();
        data.resize(rows * dim, 0.0);
        let t = self.make(&data, &[rows, dim])?;
        self.insert(name, t)
    }

    /// A parameter filled with `value`.
    pub fn constant(&mut self, name: &str, shape: &[usize], value: f32) -> Result<Tensor> {
        let n = self.checked_len(shape)?;
        let t = self.make(&vec![value; n], shape)?;
        self.insert(name, t)
    }

    fn insert(&mut self, name: &str, t: Tensor) -> Result<Tensor> {
        if self.params.iter().any(|(n, _)| n == name) {
            return Err(Error::Config(format!("parameter {name} defined twice")));
        }
        let t = t.with_grad();
        self.params.push((name.to_string(), t.clone()));
        Ok(t)
    }

    /// (name, tensor) pairs in creation order.
    pub fn named(&self) -> &[(String, Tensor)] {
        &self.params
    }

    /// The tensors in creation order (for optimizers).
    pub fn tensors(&self) -> Vec<Tensor> {
        self.params.iter().map(|(_, t)| t.clone()).collect()
    }

    /// Total number of scalar parameters.
    pub fn count(&self) -> usize {
        self.params.iter().map(|(_, t)| t.numel()).sum()
    }
}

/// `y = x·Wᵀ + b`.
pub struct Linear {
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    /// `name.weight` [out, inp] and `name.bias` [out].
    pub fn new(ps: &mut ParamStore, name: &str, inp: usize, out: usize) -> Result<Linear> {
        let bound = 1.0 / (inp as f64).sqrt();
        Ok(Linear {
            weight: ps.uniform(&format!("{name}.weight"), &[out, inp], bound)?,
            bias: ps.uniform(&format!("{name}.bias"), &[out], bound)?,
        })
    }

    /// Applies the layer to `[.., inp]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.linear(&self.weight, Some(&self.bias))?)
    }

    /// The weight `[out, inp]`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The bias `[out]`.
    pub fn bias(&self) -> &Tensor {
        &self.bias
    }
}

/// Several layers' `Linear`s applied to one input in one matmul: their weights and biases
/// joined (buffer copies), `W·xᵀ + b` computed channel-major `[Σ out, B]`, and each layer's
/// `[out, B]` rows a view of it. Returns the rows in the layers' order.
pub fn linear_rows_channel_major(layers: &[&Linear], x: &Tensor) -> Result<Vec<Tensor>> {
    let weights: Vec<&Tensor> = layers.iter().map(|l| l.weight()).collect();
    let biases: Vec<&Tensor> = layers.iter().map(|l| l.bias()).collect();
    let w = Tensor::cat(&weights, 0)?;
    let b = Tensor::cat(&biases, 0)?;
    let total = b.numel();
    let all = w.matmul_t(x, false, true)?.add(&b.reshape(&[total, 1])?)?;
    let mut start = 0;
    let mut rows = Vec::with_capacity(layers.len());
    for l in layers {
        let out = l.bias().numel();
        rows.push(all.narrow(start, out)?);
        start += out;
    }
    Ok(rows)
}

/// A 2-D convolution with bias.
pub struct Conv2d {
    weight: Tensor,
    bias: Tensor,
    stride: usize,
    padding: usize,
}

impl Conv2d {
    /// `name.weight` [out, inp, k, k] and `name.bias` [out].
    pub fn new(
        ps: &mut ParamStore,
        name: &str,
        inp: usize,
        out: usize,
        k: usize,
        stride: usize,
        padding: usize,
    ) -> Result<Conv2d> {
        let bound = 1.0 / ((inp * k * k) as f64).sqrt();
        Ok(Conv2d {
            weight: ps.uniform(&format!("{name}.weight"), &[out, inp, k, k], bound)?,
            bias: ps.uniform(&format!("{name}.bias"), &[out], bound)?,
            stride,
            padding,
        })
    }

    /// Applies the convolution to an NCHW tensor.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.conv2d(
            &self.weight,
            Some(&self.bias),
            self.stride,
            self.padding,
            Activation::Identity,
        )?)
    }
}

/// Group norm with affine parameters, optionally followed by SiLU (fused).
pub struct GroupNorm {
    gamma: Tensor,
    beta: Tensor,
    groups: usize,
}

impl GroupNorm {
    /// `name.weight` = 1 and `name.bias` = 0, both [channels].
    pub fn new(
        ps: &mut ParamStore,
        name: &str,
        channels: usize,
        groups: usize,
    ) -> Result<GroupNorm> {
        if !channels.is_multiple_of(groups) {
            return Err(Error::Config(format!(
                "{name}: {channels} channels do not split into {groups} groups"
            )));
        }
        Ok(GroupNorm {
            gamma: ps.constant(&format!("{name}.weight"), &[channels], 1.0)?,
            beta: ps.constant(&format!("{name}.bias"), &[channels], 0.0)?,
            groups,
        })
    }

    /// Normalises, then applies SiLU when `silu`.
    pub fn forward(&self, x: &Tensor, silu: bool) -> Result<Tensor> {
        Ok(x.group_norm(self.groups, &self.gamma, &self.beta, 1e-5, silu)?)
    }
}

/// `h = conv1(SiLU(GN(x))); h += temb_proj(SiLU(temb)); h = conv2(SiLU(GN(h))); out = skip(x) + h`
/// (the reference U-Net's ResBlock; `skip` is a 1×1 conv when the channel count changes).
///
/// With scale-shift conditioning (ADM's `use_scale_shift_norm`, "AdaGN"), the embedding is not
/// added: `(scale, shift) = temb_proj(SiLU(temb))` and the second norm becomes
/// `SiLU(GN(h)·(1 + scale) + shift)`, one group-norm pass with per-sample γ/β. GN's own affine
/// is then left out: the projection's bias already gives every channel a learned γ and β.
pub struct ResBlock {
    norm1: GroupNorm,
    conv1: Conv2d,
    temb: Linear,
    second: SecondNorm,
    conv2: Conv2d,
    skip: Option<Conv2d>,
}

/// The ResBlock's second normalisation: with its own affine (additive embedding) or with the
/// embedding's per-sample scale and shift.
enum SecondNorm {
    Affine(GroupNorm),
    ScaleShift { channels: usize, groups: usize },
}

impl ResBlock {
    /// Parameters `name.{norm1, conv1, temb, norm2, conv2, skip}` (no `norm2` with
    /// `scale_shift`, whose `temb` has 2·out outputs: scale, then shift).
    pub fn new(
        ps: &mut ParamStore,
        name: &str,
        (inp, out): (usize, usize),
        temb_dim: usize,
        groups: usize,
        scale_shift: bool,
    ) -> Result<ResBlock> {
        let norm1 = GroupNorm::new(ps, &format!("{name}.norm1"), inp, groups)?;
        let conv1 = Conv2d::new(ps, &format!("{name}.conv1"), inp, out, 3, 1, 1)?;
        let temb_out = if scale_shift { 2 * out } else { out };
        let temb = Linear::new(ps, &format!("{name}.temb"), temb_dim, temb_out)?;
        let second = if scale_shift {
            if !out.is_multiple_of(groups) {
                return Err(Error::Config(format!(
                    "{name}: {out} channels do not split into {groups} groups"
                )));
            }
            SecondNorm::ScaleShift {
                channels: out,
                groups,
            }
        } else {
            SecondNorm::Affine(GroupNorm::new(ps, &format!("{name}.norm2"), out, groups)?)
        };
        Ok(ResBlock {
            norm1,
            conv1,
            temb,
            second,
            conv2: Conv2d::new(ps, &format!("{name}.conv2"), out, out, 3, 1, 1)?,
            skip: if inp != out {
                Some(Conv2d::new(ps, &format!("{name}.skip"), inp, out, 1, 1, 0)?)
            } else {
                None
            },
        })
    }

    /// The projection of the time embedding into this block (`[out, temb_dim]`, or
    /// `[2·out, temb_dim]` with scale-shift): the U-Net applies every block's in one matmul.
    pub fn temb(&self) -> &Linear {
        &self.temb
    }

    /// `x`: [B, inp, H, W]; `temb_proj`: this block's projection of SiLU(time embedding),
    /// channel-major `[out, B]` (`[2·out, B]`: scale rows, then shift rows, with scale-shift),
    /// as [`linear_rows_channel_major`] gives it.
    pub fn forward(&self, x: &Tensor, temb_proj: &Tensor) -> Result<Tensor> {
        let h = self.conv1.forward(&self.norm1.forward(x, true)?)?;
        let b = x.dims()[0];
        let rows = self.temb.bias().numel();
        if temb_proj.dims() != [rows, b] {
            return Err(Error::Config(format!(
                "a residual block's time projection must be [{rows}, {b}]; got {}",
                temb_proj.shape()
            )));
        }
        let h = match &self.second {
            SecondNorm::Affine(norm2) => {
                let t = temb_proj.permute(&[1, 0])?;
                norm2.forward(&h.add(&t.reshape(&[b, rows, 1, 1])?)?, true)?
            }
            &SecondNorm::ScaleShift { channels, groups } => {
                // [2C, B] is [2, C, B]: the norm reads γ = 1 + scale and β = shift in place.
                let packed = temb_proj.reshape(&[2, channels, b])?;
                h.group_norm_scale_shift(groups, &packed, 1e-5, true)?
            }
        };
        let h = self.conv2.forward(&h)?;
        let skip = match &self.skip {
            Some(s) => s.forward(x)?,
            None => x.clone(),
        };
        Ok(skip.add(&h)?)
    }
}

/// `out = x + proj(attention(qkv(GN(x))))` over the H·W positions, `heads` heads.
pub struct AttnBlock {
    norm: GroupNorm,
    qkv: Conv2d,
    proj: Conv2d,
    heads: usize,
}

impl AttnBlock {
    /// Parameters `name.{norm, qkv, proj}`.
    pub fn new(
        ps: &mut ParamStore,
        name: &str,
        channels: usize,
        heads: usize,
        groups: usize,
    ) -> Result<AttnBlock> {
        if !channels.is_multiple_of(heads) {
            return Err(Error::Config(format!(
                "{name}: {channels} channels do not split into {heads} heads"
            )));
        }
        Ok(AttnBlock {
            norm: GroupNorm::new(ps, &format!("{name}.norm"), channels, groups)?,
            qkv: Conv2d::new(ps, &format!("{name}.qkv"), channels, 3 * channels, 1, 1, 0)?,
            proj: Conv2d::new(ps, &format!("{name}.proj"), channels, channels, 1, 1, 0)?,
            heads,
        })
    }

    /// `x`: [B, C, H, W].
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let &[b, c, h, w] = x.dims() else {
            return Err(Error::Config(format!(
                "attention block input {} is not NCHW",
                x.shape()
            )));
        };
        let (heads, hd, s) = (self.heads, c / self.heads, h * w);
        let qkv = self.qkv.forward(&self.norm.forward(x, false)?)?;
        // [B, 3C, HW] → [B, 3, heads, hd, HW] → [3, B, heads, HW, hd]
        let qkv = qkv
            .reshape(&[b, 3, heads, hd, s])?
            .permute(&[1, 0, 2, 4, 3])?;
        let part =
            |i: usize| -> Result<Tensor> { Ok(qkv.narrow(i, 1)?.reshape(&[b, heads, s, hd])?) };
        let o = part(0)?.attention(&part(1)?, &part(2)?, 1.0 / (hd as f32).sqrt())?;
        // [B, heads, HW, hd] → [B, heads, hd, HW] → [B, C, H, W]
        let o = o.permute(&[0, 1, 3, 2])?.reshape(&[b, c, h, w])?;
        Ok(x.add(&self.proj.forward(&o)?)?)
    }
}

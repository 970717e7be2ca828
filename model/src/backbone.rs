//! The shared denoising U-Net: a configurable ADM-style U-Net (GroupNorm+SiLU residual blocks with
//! a sinusoidal time embedding, strided-conv downsampling, nearest upsampling + conv, skip
//! connections by channel concatenation, self-attention at the bottleneck). With
//! [`UNetConfig::reference`] it is exactly the reference U-Net of `../shared/peer/bench_params.json`
//! (parameter names, shapes and count), so our training step can be benchmarked against PyTorch's.

use mtdiff_engine::ops::diffusion::timestep_embedding;
use mtdiff_engine::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::nn::{AttnBlock, Conv2d, GroupNorm, Linear, ParamStore, ResBlock};

/// Shape of a U-Net.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UNetConfig {
    /// Input channels (the diffusion space's).
    pub in_channels: usize,
    /// Output channels (ε, plus any x̂ channels of image heads).
    pub out_channels: usize,
    /// Channels per level; the input is halved (len − 1) times.
    pub channels: Vec<usize>,
    /// Group-norm groups.
    pub groups: usize,
    /// Width of the sinusoidal timestep features.
    pub time_sin_dim: usize,
    /// Width of the time embedding.
    pub time_dim: usize,
    /// Attention heads of the bottleneck attention block (0: no attention).
    pub attn_heads: usize,
}

impl UNetConfig {
    /// The reference U-Net of `bench_params.json` (1,179,105 parameters) for 1×28×28 images.
    pub fn reference() -> UNetConfig {
        UNetConfig {
            in_channels: 1,
            out_channels: 1,
            channels: vec![32, 64, 128],
            groups: 8,
            time_sin_dim: 32,
            time_dim: 128,
            attn_heads: 4,
        }
    }

    fn validate(&self) -> Result<()> {
        if self.channels.len() < 2
            || self
                .channels
                .iter()
                .any(|&c| c == 0 || c % self.groups != 0)
        {
            return Err(Error::Config(format!(
                "U-Net channels {:?} need ≥ 2 levels, each divisible by {} groups",
                self.channels, self.groups
            )));
        }
        Ok(())
    }
}

/// What a forward pass gives: the output map and the features the modality heads read.
pub struct UNetOutput {
    /// `[B, out_channels, H, W]`.
    pub out: Tensor,
    /// The bottleneck feature map `[B, channels.last, H/2^(L−1), W/2^(L−1)]`.
    pub bottleneck: Tensor,
    /// The last decoder feature map `[B, channels[0], H, W]` (before the output norm).
    pub last: Tensor,
}

/// The U-Net's layers; parameters live in the [`ParamStore`] it was built with.
pub struct UNet {
    config: UNetConfig,
    time1: Linear,
    time2: Linear,
    conv_in: Conv2d,
    enc: Vec<ResBlock>,
    down: Vec<Conv2d>,
    mid1: ResBlock,
    mid_attn: Option<AttnBlock>,
    mid2: ResBlock,
    up: Vec<Conv2d>,
    dec: Vec<ResBlock>,
    norm_out: GroupNorm,
    conv_out: Conv2d,
}

impl UNet {
    /// Creates every parameter in `ps` (in the reference's order and names).
    pub fn new(ps: &mut ParamStore, config: &UNetConfig) -> Result<UNet> {
        config.validate()?;
        let c = &config.channels;
        let (g, td, l) = (config.groups, config.time_dim, c.len());
        let time1 = Linear::new(ps, "time_mlp.0", config.time_sin_dim, td)?;
        let time2 = Linear::new(ps, "time_mlp.2", td, td)?;
        let conv_in = Conv2d::new(ps, "conv_in", config.in_channels, c[0], 3, 1, 1)?;
        let (mut enc, mut down) = (Vec::new(), Vec::new());
        let mut cur = c[0];
        for (lv, &width) in c[..l - 1].iter().enumerate() {
            enc.push(ResBlock::new(ps, &format!("enc{lv}"), cur, width, td, g)?);
            cur = width;
            down.push(Conv2d::new(ps, &format!("down{lv}"), cur, cur, 3, 2, 1)?);
        }
        let mid1 = ResBlock::new(ps, "mid1", cur, c[l - 1], td, g)?;
        cur = c[l - 1];
        let mid_attn = if config.attn_heads > 0 {
            Some(AttnBlock::new(ps, "mid_attn", cur, config.attn_heads, g)?)
        } else {
            None
        };
        let mid2 = ResBlock::new(ps, "mid2", cur, cur, td, g)?;
        let (mut up, mut dec) = (Vec::new(), Vec::new());
        for lv in (0..l - 1).rev() {
            up.push(Conv2d::new(ps, &format!("up{lv}_conv"), cur, cur, 3, 1, 1)?);
            dec.push(ResBlock::new(
                ps,
                &format!("dec{lv}"),
                cur + c[lv],
                c[lv],
                td,
                g,
            )?);
            cur = c[lv];
        }
        let norm_out = GroupNorm::new(ps, "norm_out", cur, g)?;
        let conv_out = Conv2d::new(ps, "conv_out", cur, config.out_channels, 3, 1, 1)?;
        Ok(UNet {
            config: config.clone(),
            time1,
            time2,
            conv_in,
            enc,
            down,
            mid1,
            mid_attn,
            mid2,
            up,
            dec,
            norm_out,
            conv_out,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &UNetConfig {
        &self.config
    }

    /// `x`: `[B, in_channels, H, W]` with H and W divisible by 2^(levels − 1); `t`: u32 `[B]`.
    pub fn forward(&self, x: &Tensor, t: &Tensor) -> Result<UNetOutput> {
        let l = self.config.channels.len();
        let d = x.dims();
        let f = 1 << (l - 1);
        if d.len() != 4
            || d[1] != self.config.in_channels
            || !d[2].is_multiple_of(f)
            || !d[3].is_multiple_of(f)
        {
            return Err(Error::Config(format!(
                "U-Net input must be [B, {}, H, W] with H, W divisible by {f}; got {}",
                self.config.in_channels,
                x.shape()
            )));
        }
        let emb = timestep_embedding(t, self.config.time_sin_dim, 10_000.0, 0.0, false)?;
        let temb = self.time2.forward(&self.time1.forward(&emb)?.silu()?)?;
        let temb_silu = temb.silu()?;
        let mut h = self.conv_in.forward(x)?;
        let mut skips = Vec::new();
        for (e, dn) in self.enc.iter().zip(&self.down) {
            h = e.forward(&h, &temb_silu)?;
            skips.push(h.clone());
            h = dn.forward(&h)?;
        }
        h = self.mid1.forward(&h, &temb_silu)?;
        if let Some(a) = &self.mid_attn {
            h = a.forward(&h)?;
        }
        h = self.mid2.forward(&h, &temb_silu)?;
        let bottleneck = h.clone();
        for (u, dc) in self.up.iter().zip(&self.dec) {
            h = u.forward(&h.upsample2x()?)?;
            let s = skips.pop().expect("one skip per decoder level");
            h = dc.forward(&Tensor::cat(&[&h, &s], 1)?, &temb_silu)?;
        }
        let out = self.conv_out.forward(&self.norm_out.forward(&h, true)?)?;
        Ok(UNetOutput {
            out,
            bottleneck,
            last: h,
        })
    }
}

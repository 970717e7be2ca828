//! The shared denoising U-Net: a configurable ADM-style U-Net (GroupNorm+SiLU residual blocks with
//! a sinusoidal time embedding, strided-conv downsampling, nearest upsampling + conv, skip
//! connections by channel concatenation, self-attention at the bottleneck). With
//! [`UNetConfig::reference`] it is exactly the reference U-Net of `model/tests/data/reference_unet.json`
//! (parameter names, shapes and count), so our training step can be benchmarked against PyTorch's.

use mtdiff_engine::ops::diffusion::timestep_embedding;
use mtdiff_engine::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::nn::{
    linear_rows_channel_major, AttnBlock, Conv2d, GroupNorm, Linear, ParamStore, ResBlock,
};

/// Euclidean norm of each class row of the class embedding at initialisation.
pub const CLASS_ROW_NORM: f64 = 8.0;

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
    /// Attention heads of every attention block (0: no attention anywhere).
    pub attn_heads: usize,
    /// Residual blocks per encoder and decoder level (the reference has 1).
    #[serde(default = "one")]
    pub res_blocks: usize,
    /// Levels that get a self-attention block after each of their residual blocks (level 0 is
    /// full resolution; the bottleneck always has one when `attn_heads > 0`).
    #[serde(default)]
    pub attn_levels: Vec<usize>,
    /// How a level halves the resolution.
    #[serde(default)]
    pub downsample: Downsample,
    /// Rows of a class-embedding table added to the time embedding (0: none). The last row is
    /// "no class"; MT-Diffusion-E feeds an observed label through it (see `ModelConfig`).
    #[serde(default)]
    pub class_tokens: usize,
    /// Residual blocks take the time (and class) embedding as a per-sample scale and shift of
    /// their second group norm (ADM's AdaGN) instead of adding it (the reference's).
    #[serde(default)]
    pub scale_shift: bool,
}

fn one() -> usize {
    1
}

/// How the encoder halves the resolution between levels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Downsample {
    /// A learned 3×3 convolution with stride 2 (the reference's).
    #[default]
    StridedConv,
    /// 2×2 average pooling (no parameters).
    AvgPool,
}

impl UNetConfig {
    /// The reference U-Net of `model/tests/data/reference_unet.json` (1,179,105 parameters) for 1×28×28 images.
    pub fn reference() -> UNetConfig {
        UNetConfig {
            in_channels: 1,
            out_channels: 1,
            channels: vec![32, 64, 128],
            groups: 8,
            time_sin_dim: 32,
            time_dim: 128,
            attn_heads: 4,
            res_blocks: 1,
            attn_levels: Vec::new(),
            downsample: Downsample::StridedConv,
            class_tokens: 0,
            scale_shift: false,
        }
    }

    /// A small U-Net for `in_channels`×H×W images with `out_channels` outputs: `channels` per
    /// level, 8 groups (or fewer if a level is narrower), attention (4 heads) at the bottleneck.
    pub fn small(in_channels: usize, out_channels: usize, channels: &[usize]) -> UNetConfig {
        let min = channels.iter().copied().min().unwrap_or(8);
        let groups = [8, 4, 2, 1].into_iter().find(|g| min % g == 0).unwrap_or(1);
        let base = channels.first().copied().unwrap_or(8);
        UNetConfig {
            in_channels,
            out_channels,
            channels: channels.to_vec(),
            groups,
            time_sin_dim: base,
            time_dim: 4 * base,
            attn_heads: if channels.last().copied().unwrap_or(0) % 4 == 0 {
                4
            } else {
                1
            },
            res_blocks: 1,
            attn_levels: Vec::new(),
            downsample: Downsample::StridedConv,
            class_tokens: 0,
            scale_shift: false,
        }
    }

    /// Checks every size; the message names the field at fault.
    pub fn validate(&self) -> Result<()> {
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
        if self.in_channels == 0 || self.out_channels == 0 || self.res_blocks == 0 {
            return Err(Error::Config(format!(
                "U-Net needs in_channels, out_channels and res_blocks ≥ 1; got {}, {}, {}",
                self.in_channels, self.out_channels, self.res_blocks
            )));
        }
        if self.time_sin_dim < 2 || !self.time_sin_dim.is_multiple_of(2) || self.time_dim == 0 {
            return Err(Error::Config(format!(
                "U-Net time_sin_dim must be even and ≥ 2 and time_dim ≥ 1; got {} and {}",
                self.time_sin_dim, self.time_dim
            )));
        }
        if let Some(&lv) = self
            .attn_levels
            .iter()
            .find(|&&lv| lv + 1 >= self.channels.len())
        {
            return Err(Error::Config(format!(
                "U-Net attn_levels names level {lv}, but only levels 0..{} have blocks there \
                 (the bottleneck's attention is set by attn_heads)",
                self.channels.len() - 1
            )));
        }
        if !self.attn_levels.is_empty() && self.attn_heads == 0 {
            return Err(Error::Config(
                "U-Net attn_levels needs attn_heads ≥ 1".to_string(),
            ));
        }
        if self.attn_heads > 0 {
            if let Some(c) = self
                .channels
                .iter()
                .find(|c| !c.is_multiple_of(self.attn_heads))
            {
                return Err(Error::Config(format!(
                    "U-Net level width {c} does not split into {} attention heads",
                    self.attn_heads
                )));
            }
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

/// Residual blocks of one level, each optionally followed by self-attention.
struct Stage {
    blocks: Vec<(ResBlock, Option<AttnBlock>)>,
}

impl Stage {
    /// Blocks `name`, `name_1`, …; the first maps `inp` to `out` channels.
    fn new(
        ps: &mut ParamStore,
        name: &str,
        inp: usize,
        out: usize,
        config: &UNetConfig,
        attention: bool,
    ) -> Result<Stage> {
        let mut blocks = Vec::new();
        for k in 0..config.res_blocks {
            let n = if k == 0 {
                name.to_string()
            } else {
                format!("{name}_{k}")
            };
            let cin = if k == 0 { inp } else { out };
            let rb = ResBlock::new(
                ps,
                &n,
                (cin, out),
                config.time_dim,
                config.groups,
                config.scale_shift,
            )?;
            let attn = if attention {
                Some(AttnBlock::new(
                    ps,
                    &format!("{n}_attn"),
                    out,
                    config.attn_heads,
                    config.groups,
                )?)
            } else {
                None
            };
            blocks.push((rb, attn));
        }
        Ok(Stage { blocks })
    }

    /// Runs the stage; each residual block takes the next of `temb_proj` (see
    /// [`UNet::res_blocks`] for the order).
    fn forward(
        &self,
        mut h: Tensor,
        temb_proj: &mut impl Iterator<Item = Tensor>,
    ) -> Result<Tensor> {
        for (rb, attn) in &self.blocks {
            h = rb.forward(&h, &next_proj(temb_proj)?)?;
            if let Some(a) = attn {
                h = a.forward(&h)?;
            }
        }
        Ok(h)
    }
}

/// The next residual block's time projection.
fn next_proj(it: &mut impl Iterator<Item = Tensor>) -> Result<Tensor> {
    it.next().ok_or_else(|| {
        Error::Config("fewer time projections than residual blocks (an internal bug)".into())
    })
}

/// The U-Net's layers; parameters live in the [`ParamStore`] it was built with.
pub struct UNet {
    config: UNetConfig,
    time1: Linear,
    time2: Linear,
    conv_in: Conv2d,
    enc: Vec<Stage>,
    down: Vec<Option<Conv2d>>,
    mid1: ResBlock,
    mid_attn: Option<AttnBlock>,
    mid2: ResBlock,
    up: Vec<Conv2d>,
    dec: Vec<Stage>,
    norm_out: GroupNorm,
    conv_out: Conv2d,
    class_emb: Option<Tensor>,
}

impl UNet {
    /// Creates every parameter in `ps` (in the reference's order and names; extra residual blocks
    /// are `enc{level}_{k}`, attention blocks `enc{level}_attn`, and so on).
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
            let attn = config.attn_levels.contains(&lv);
            enc.push(Stage::new(
                ps,
                &format!("enc{lv}"),
                cur,
                width,
                config,
                attn,
            )?);
            cur = width;
            down.push(match config.downsample {
                Downsample::StridedConv => {
                    Some(Conv2d::new(ps, &format!("down{lv}"), cur, cur, 3, 2, 1)?)
                }
                Downsample::AvgPool => None,
            });
        }
        let ss = config.scale_shift;
        let mid1 = ResBlock::new(ps, "mid1", (cur, c[l - 1]), td, g, ss)?;
        cur = c[l - 1];
        let mid_attn = if config.attn_heads > 0 {
            Some(AttnBlock::new(ps, "mid_attn", cur, config.attn_heads, g)?)
        } else {
            None
        };
        let mid2 = ResBlock::new(ps, "mid2", (cur, cur), td, g, ss)?;
        let (mut up, mut dec) = (Vec::new(), Vec::new());
        for lv in (0..l - 1).rev() {
            up.push(Conv2d::new(ps, &format!("up{lv}_conv"), cur, cur, 3, 1, 1)?);
            let attn = config.attn_levels.contains(&lv);
            dec.push(Stage::new(
                ps,
                &format!("dec{lv}"),
                cur + c[lv],
                c[lv],
                config,
                attn,
            )?);
            cur = c[lv];
        }
        let norm_out = GroupNorm::new(ps, "norm_out", cur, g)?;
        let conv_out = Conv2d::new(ps, "conv_out", cur, config.out_channels, 3, 1, 1)?;
        // Created last, so the reference's parameter order is unchanged.
        let class_emb = match config.class_tokens {
            0 => None,
            // Our choice: orthogonal class rows of norm 8 (an N(0, 1) row's norm at td = 64, as
            // ADM's nn.Embedding) and a zero "no label" row, so every class starts equally
            // distinct from the others and from "no label". The main job's class accuracy given
            // the label (N = 300, seed 0): rows U(±0.5) (norm ≈ 2.3, random distances) 0.57,
            // orthogonal of norm 4 0.65, 8 0.79, 16 0.72 (FID-lite 53.5 / 52.1 / 48.6 / 63.0).
            rows => Some(ps.class_table("class_emb", rows, td, CLASS_ROW_NORM)?),
        };
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
            class_emb,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &UNetConfig {
        &self.config
    }

    /// The residual blocks in the order the forward pass runs them: encoder stages, the two
    /// middle blocks, decoder stages.
    pub fn res_blocks(&self) -> Vec<&ResBlock> {
        fn stage(s: &Stage) -> impl Iterator<Item = &ResBlock> {
            s.blocks.iter().map(|(rb, _)| rb)
        }
        let mut v: Vec<&ResBlock> = self.enc.iter().flat_map(stage).collect();
        v.extend([&self.mid1, &self.mid2]);
        v.extend(self.dec.iter().flat_map(stage));
        v
    }

    /// `x`: `[B, in_channels, H, W]` with H and W divisible by 2^(levels − 1); `t`: u32 `[B]`.
    /// With a class-embedding table, every sample gets its "no class" row.
    pub fn forward(&self, x: &Tensor, t: &Tensor) -> Result<UNetOutput> {
        self.forward_class(x, t, None)
    }

    /// [`UNet::forward`] with u32 class tokens `[B]` (rows of the class-embedding table; None:
    /// "no class" for every sample). An error when the U-Net has no class embedding.
    pub fn forward_class(
        &self,
        x: &Tensor,
        t: &Tensor,
        class: Option<&Tensor>,
    ) -> Result<UNetOutput> {
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
        let mut temb = self.time2.forward(&self.time1.forward(&emb)?.silu()?)?;
        match (&self.class_emb, class) {
            (Some(table), class) => {
                let b = t.dims()[0];
                let none;
                let tokens = match class {
                    Some(c) if c.dims() == [b] => c,
                    Some(c) => {
                        return Err(Error::Config(format!(
                            "class tokens must be u32 [{b}]; got {}",
                            c.shape()
                        )))
                    }
                    None => {
                        let null = (self.config.class_tokens - 1) as u32;
                        none = Tensor::from_u32(x.device(), &vec![null; b], &[b])?;
                        &none
                    }
                };
                temb = temb.add(&table.gather_rows(tokens)?)?;
            }
            (None, Some(_)) => {
                return Err(Error::Config(
                    "class tokens given to a U-Net without a class embedding".to_string(),
                ))
            }
            (None, None) => {}
        }
        // Every residual block's projection of SiLU(temb) in one matmul, in forward order.
        let temb_silu = temb.silu()?;
        let layers: Vec<&Linear> = self.res_blocks().iter().map(|rb| rb.temb()).collect();
        let mut proj = linear_rows_channel_major(&layers, &temb_silu)?.into_iter();
        let mut h = self.conv_in.forward(x)?;
        let mut skips = Vec::new();
        for (e, dn) in self.enc.iter().zip(&self.down) {
            h = e.forward(h, &mut proj)?;
            skips.push(h.clone());
            h = match dn {
                Some(conv) => conv.forward(&h)?,
                None => h.avgpool2x2()?,
            };
        }
        h = self.mid1.forward(&h, &next_proj(&mut proj)?)?;
        if let Some(a) = &self.mid_attn {
            h = a.forward(&h)?;
        }
        h = self.mid2.forward(&h, &next_proj(&mut proj)?)?;
        let bottleneck = h.clone();
        for (u, dc) in self.up.iter().zip(&self.dec) {
            h = u.forward(&h.upsample2x()?)?;
            let s = skips.pop().expect("one skip per decoder level");
            h = dc.forward(Tensor::cat(&[&h, &s], 1)?, &mut proj)?;
        }
        let out = self.conv_out.forward(&self.norm_out.forward(&h, true)?)?;
        Ok(UNetOutput {
            out,
            bottleneck,
            last: h,
        })
    }
}

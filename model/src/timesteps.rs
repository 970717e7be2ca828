//! How training draws the timestep t of each sample. DDPM draws t uniformly from 0..T; with a
//! linear β schedule most of those draws land where the image is nearly pure noise (for the main
//! job's T = 400, three quarters have SNR < 1.1). Our addition, after EDM's log-normal noise
//! levels (Karras et al. 2022) and SD3's logit-normal timesteps: draw ln SNR from a normal and
//! take the timestep whose ln SNR is nearest, which concentrates training on the noise levels
//! where a sample's layout is decided. Every t keeps a non-zero chance only where the normal
//! reaches it; the loss weighting (Min-SNR, …) is applied on top, unchanged.

use std::fmt;

use mtdiff_engine::rng::CpuRng;

use crate::error::{Error, Result};
use crate::schedule::Schedule;

/// The distribution of training timesteps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TimestepSampling {
    /// t uniform over 0..T (DDPM).
    Uniform,
    /// ln SNR_t ~ Normal(mean, std²), mapped to the nearest timestep.
    LogSnrNormal {
        /// Mean of ln SNR.
        mean: f64,
        /// Standard deviation of ln SNR (> 0).
        std: f64,
    },
}

impl TimestepSampling {
    /// Parses `uniform` or `log-snr:MEAN,STD` (e.g. `log-snr:-1,2.5`).
    pub fn parse(text: &str) -> Result<TimestepSampling> {
        let bad = || {
            Error::Config(format!(
                "timestep sampling {text:?}: use uniform or log-snr:MEAN,STD (STD > 0), e.g. \
                 log-snr:-1,2.5"
            ))
        };
        if text == "uniform" {
            return Ok(TimestepSampling::Uniform);
        }
        let args = text.strip_prefix("log-snr:").ok_or_else(bad)?;
        let (m, s) = args.split_once(',').ok_or_else(bad)?;
        let (mean, std) = (
            m.trim().parse::<f64>().map_err(|_| bad())?,
            s.trim().parse::<f64>().map_err(|_| bad())?,
        );
        if !(mean.is_finite() && std.is_finite() && std > 0.0) {
            return Err(bad());
        }
        Ok(TimestepSampling::LogSnrNormal { mean, std })
    }
}

impl fmt::Display for TimestepSampling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimestepSampling::Uniform => write!(f, "uniform"),
            TimestepSampling::LogSnrNormal { mean, std } => write!(f, "log-snr:{mean},{std}"),
        }
    }
}

/// Draws training timesteps for one schedule.
#[derive(Clone, Debug)]
pub struct TimestepSampler {
    sampling: TimestepSampling,
    /// ln SNR_t = ln(ᾱ_t / (1 − ᾱ_t)) for t = 0..T (decreasing).
    log_snr: Vec<f64>,
}

impl TimestepSampler {
    /// A sampler of `sampling` over the timesteps of `schedule`.
    pub fn new(sampling: TimestepSampling, schedule: &Schedule) -> TimestepSampler {
        let log_snr = schedule
            .alphas_cumprod
            .iter()
            .map(|&a| (a / (1.0 - a)).ln())
            .collect();
        TimestepSampler { sampling, log_snr }
    }

    /// The timestep whose ln SNR is nearest to `l`.
    pub fn nearest(&self, l: f64) -> usize {
        // ln SNR decreases with t: the first t below l, or the one before it.
        let after = self.log_snr.partition_point(|&v| v >= l);
        let last = self.log_snr.len() - 1;
        match after {
            0 => 0,
            a if a > last => last,
            a if (self.log_snr[a - 1] - l).abs() <= (self.log_snr[a] - l).abs() => a - 1,
            a => a,
        }
    }

    /// One timestep.
    pub fn sample(&self, rng: &mut CpuRng) -> usize {
        match self.sampling {
            TimestepSampling::Uniform => rng.below(self.log_snr.len()),
            TimestepSampling::LogSnrNormal { mean, std } => self.nearest(mean + std * rng.normal()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::ScheduleConfig;

    fn schedule() -> Schedule {
        Schedule::new(ScheduleConfig {
            num_train_timesteps: 400,
            beta_end: 0.05,
            ..ScheduleConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn parses_and_prints_both_kinds() {
        assert_eq!(
            TimestepSampling::parse("uniform").unwrap(),
            TimestepSampling::Uniform
        );
        let l = TimestepSampling::parse("log-snr:-1,2.5").unwrap();
        assert_eq!(
            l,
            TimestepSampling::LogSnrNormal {
                mean: -1.0,
                std: 2.5
            }
        );
        assert_eq!(l.to_string(), "log-snr:-1,2.5");
        for bad in [
            "",
            "normal",
            "log-snr:1",
            "log-snr:a,1",
            "log-snr:0,0",
            "log-snr:0,-1",
        ] {
            let e = TimestepSampling::parse(bad).unwrap_err().to_string();
            assert!(e.contains("log-snr:MEAN,STD"), "{bad}: {e}");
        }
    }

    #[test]
    fn nearest_inverts_the_log_snr_table() {
        let s = TimestepSampler::new(TimestepSampling::Uniform, &schedule());
        for t in [0, 1, 57, 200, 398, 399] {
            assert_eq!(s.nearest(s.log_snr[t]), t);
        }
        assert_eq!(s.nearest(1e9), 0);
        assert_eq!(s.nearest(-1e9), 399);
        // Between two neighbours: the closer one.
        let mid = 0.75 * s.log_snr[100] + 0.25 * s.log_snr[101];
        assert_eq!(s.nearest(mid), 100);
    }

    #[test]
    fn log_snr_normal_concentrates_where_asked() {
        let sched = schedule();
        let s = TimestepSampler::new(
            TimestepSampling::LogSnrNormal {
                mean: -1.0,
                std: 2.5,
            },
            &sched,
        );
        let mut rng = CpuRng::new(3);
        let n = 20_000;
        let ts: Vec<usize> = (0..n).map(|_| s.sample(&mut rng)).collect();
        // The median ln SNR is the mean; about 68 % fall within one std of it.
        let mut l: Vec<f64> = ts.iter().map(|&t| s.log_snr[t]).collect();
        l.sort_by(|a, b| a.partial_cmp(b).unwrap());
        assert!((l[n / 2] + 1.0).abs() < 0.1, "median {}", l[n / 2]);
        let within = l.iter().filter(|&&v| (v + 1.0).abs() < 2.5).count() as f64 / n as f64;
        assert!((within - 0.68).abs() < 0.03, "{within}");
        // Uniform stays uniform: each quarter of 0..T gets about a quarter.
        let u = TimestepSampler::new(TimestepSampling::Uniform, &sched);
        let q = (0..n).filter(|_| u.sample(&mut rng) < 100).count() as f64 / n as f64;
        assert!((q - 0.25).abs() < 0.02, "{q}");
    }
}

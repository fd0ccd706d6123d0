//! `scheduler_config.json` as diffusers writes it (same keys; every key optional so each scheduler
//! applies its own class defaults, as diffusers' `from_config` does).

use std::path::Path;

use serde::{Deserialize, Deserializer};

use crate::{Error, Result};

/// A float that may be written as `-Infinity` / `Infinity` / `NaN` (Python's `json.dumps` does this,
/// e.g. DPM-Solver's `lambda_min_clipped`). The loader rewrites those bare tokens to strings first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JsonF64(pub f64);

impl<'de> Deserialize<'de> for JsonF64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(f64),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(v) => Ok(JsonF64(v)),
            Raw::Str(s) => match s.as_str() {
                "-Infinity" => Ok(JsonF64(f64::NEG_INFINITY)),
                "Infinity" => Ok(JsonF64(f64::INFINITY)),
                "NaN" => Ok(JsonF64(f64::NAN)),
                other => Err(serde::de::Error::custom(format!(
                    "expected a number, got {other:?}"
                ))),
            },
        }
    }
}

/// The keys of diffusers' scheduler configs that the implemented schedulers read. Keys not listed
/// (`_class_name`, `skip_prk_steps`, ...) are ignored; `None` means "the scheduler's default".
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SchedulerConfig {
    #[serde(rename = "_class_name")]
    pub class_name: Option<String>,
    pub num_train_timesteps: Option<usize>,
    pub beta_start: Option<f64>,
    pub beta_end: Option<f64>,
    pub beta_schedule: Option<String>,
    pub trained_betas: Option<serde_json::Value>,
    pub prediction_type: Option<String>,
    pub thresholding: Option<bool>,
    pub timestep_spacing: Option<String>,
    pub steps_offset: Option<i64>,
    pub rescale_betas_zero_snr: Option<bool>,
    // DPM-Solver multistep
    pub solver_order: Option<usize>,
    pub algorithm_type: Option<String>,
    pub solver_type: Option<String>,
    pub lower_order_final: Option<bool>,
    pub euler_at_final: Option<bool>,
    pub use_karras_sigmas: Option<bool>,
    pub use_exponential_sigmas: Option<bool>,
    pub use_beta_sigmas: Option<bool>,
    pub use_lu_lambdas: Option<bool>,
    pub use_flow_sigmas: Option<bool>,
    pub use_dynamic_shifting: Option<bool>,
    pub final_sigmas_type: Option<String>,
    pub lambda_min_clipped: Option<JsonF64>,
    pub variance_type: Option<String>,
    // DDIM
    pub clip_sample: Option<bool>,
    pub clip_sample_range: Option<f64>,
    pub set_alpha_to_one: Option<bool>,
}

impl SchedulerConfig {
    /// Parse the text of a `scheduler_config.json`.
    pub fn from_json_str(text: &str) -> Result<Self> {
        let cleaned = quote_non_finite(text);
        serde_json::from_str(&cleaned)
            .map_err(|e| Error::ModelFormat(format!("scheduler_config.json: {e}")))
    }

    /// Read and parse a `scheduler_config.json` file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = crate::io::read_text(path)?;
        Self::from_json_str(&text).map_err(|e| match e {
            Error::ModelFormat(m) => Error::ModelFormat(format!("{}: {m}", path.display())),
            other => other,
        })
    }
}

/// Rewrite the bare JSON-incompatible tokens `-Infinity`, `Infinity`, `NaN` (outside strings) as
/// strings so serde_json accepts them.
fn quote_non_finite(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut in_str = false;
    let mut escaped = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
            rest = &rest[c.len_utf8()..];
            continue;
        }
        if c == '"' {
            in_str = true;
            out.push(c);
            rest = &rest[1..];
            continue;
        }
        let mut matched = false;
        for tok in ["-Infinity", "Infinity", "NaN"] {
            if rest.starts_with(tok) {
                out.push('"');
                out.push_str(tok);
                out.push('"');
                rest = &rest[tok.len()..];
                matched = true;
                break;
            }
        }
        if !matched {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// Error for a config value this crate does not implement.
pub(crate) fn unsupported(scheduler: &str, key: &str, value: impl std::fmt::Debug) -> Error {
    Error::InvalidOptions(format!(
        "{scheduler}: scheduler_config.json key `{key}` = {value:?} is not supported"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sd14_pndm_config_and_infinity() {
        let text = r#"{"_class_name": "PNDMScheduler", "_diffusers_version": "0.7.0.dev0",
            "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
            "num_train_timesteps": 1000, "set_alpha_to_one": false, "skip_prk_steps": true,
            "steps_offset": 1, "trained_betas": null, "clip_sample": false,
            "lambda_min_clipped": -Infinity, "variance_type": null}"#;
        let c = SchedulerConfig::from_json_str(text).unwrap();
        assert_eq!(c.class_name.as_deref(), Some("PNDMScheduler"));
        assert_eq!(c.beta_end, Some(0.012));
        assert_eq!(c.steps_offset, Some(1));
        assert_eq!(c.lambda_min_clipped, Some(JsonF64(f64::NEG_INFINITY)));
        assert!(c.trained_betas.is_none());
        assert!(c.variance_type.is_none());
    }

    #[test]
    fn bad_json_is_model_format() {
        let e = SchedulerConfig::from_json_str("{\"beta_end\": \"x\"}").unwrap_err();
        assert_eq!(e.code(), crate::Code::ModelFormat);
    }
}

//! Colour data sets: `named` (every XKCD colour) and `shades` (seeded shades of named colours,
//! several per name, each still nearest to its name and apart from its siblings in lightness:
//! the "two shades of red" that a name cannot tell apart).

use crate::colour::tensor;
use crate::lab::{to_lab, to_rgb};
use crate::names::{NameTable, XKCD};
use commute_sdk::prelude::*;
use commute_sdk::{AssetSpec, Tensor};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The `named` source: every colour of the XKCD list, in its (alphabetical) order.
pub struct Named(NameTable);

impl Function for Named {
    const DOC: &'static str =
        "Every colour of the XKCD colour survey's list (949 named sRGB colours), as [3] tensors.";
    type Params = NoParams;
    const ASSETS: &'static [AssetSpec] = &[XKCD];

    fn open(_: NoParams, ctx: &Context) -> Result<Self> {
        Ok(Named(NameTable::open(ctx.asset(XKCD.name.as_ref())?)?))
    }
}

impl Source for Named {
    type Output = Tensor;

    fn items(&mut self) -> Result<Vec<Tensor>> {
        Ok(self.0.rgb.iter().map(|&rgb| tensor(rgb)).collect())
    }
}

/// Parameters of `shades`.
#[params]
#[derive(Debug, Clone)]
pub struct ShadesParams {
    /// Named colours to take shades of (1–949), drawn from the XKCD list by the seed.
    #[serde(default = "default_names")]
    #[schemars(range(min = 1, max = 949))]
    pub names: usize,
    /// Shades per name (1–16).
    #[serde(default = "default_per_name")]
    #[schemars(range(min = 1, max = 16))]
    pub per_name: usize,
    /// The largest change of lightness (L*, 0–100 scale) from the named colour, either way.
    #[serde(default = "default_spread")]
    #[schemars(range(min = 0.5, max = 50))]
    pub spread: f64,
    /// Least difference of lightness between two shades of the same name (so that one is darker).
    #[serde(default = "default_gap")]
    #[schemars(range(min = 0, max = 50))]
    pub gap: f64,
    /// Random seed: the names drawn and every shade depend on it alone.
    #[serde(default)]
    pub seed: u64,
}

fn default_names() -> usize {
    200
}
fn default_per_name() -> usize {
    2
}
fn default_spread() -> f64 {
    12.0
}
fn default_gap() -> f64 {
    4.0
}

/// The `shades` source: `per-name` shades of each of `names` named colours, name by name.
pub struct Shades {
    table: NameTable,
    params: ShadesParams,
}

impl Function for Shades {
    const DOC: &'static str = "Seeded shades of named XKCD colours ([3] sRGB tensors): `per-name` shades of each of `names` colours, each shade's lightness moved by up to `spread` L* and still nearest to its own name, siblings at least `gap` L* apart; names whose neighbourhood cannot hold them are passed over.";
    type Params = ShadesParams;
    const ASSETS: &'static [AssetSpec] = &[XKCD];

    fn open(params: ShadesParams, ctx: &Context) -> Result<Self> {
        ensure!(
            params.gap * (params.per_name as f64 - 1.0) <= 2.0 * params.spread,
            "{} shades {} L* apart do not fit within ±{} L*",
            params.per_name,
            params.gap,
            params.spread
        );
        Ok(Shades { table: NameTable::open(ctx.asset(XKCD.name.as_ref())?)?, params })
    }
}

/// Attempts at placing one name's shades before the name is passed over.
const TRIES: usize = 64;

impl Source for Shades {
    type Output = Tensor;

    fn items(&mut self) -> Result<Vec<Tensor>> {
        let p = &self.params;
        let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
        let mut order: Vec<usize> = (0..self.table.names.len()).collect();
        order.shuffle(&mut rng);
        let mut out = Vec::with_capacity(p.names * p.per_name);
        let mut taken = 0;
        for &i in &order {
            if taken == p.names {
                break;
            }
            if let Some(shades) = self.place(i, &mut rng) {
                out.extend(shades.into_iter().map(tensor));
                taken += 1;
            }
        }
        ensure!(
            taken == p.names,
            "only {taken} of the {} names asked for can hold {} shades within ±{} L*",
            p.names,
            p.per_name,
            p.spread
        );
        Ok(out)
    }
}

impl Shades {
    /// `per-name` shades of named colour `i` (sRGB), each nearest to name `i` after rounding to
    /// the f32 it is stored as, lightness at least `gap` apart; `None` when no draw fits.
    fn place(&self, i: usize, rng: &mut ChaCha8Rng) -> Option<Vec<[f64; 3]>> {
        let p = &self.params;
        let base = self.table.lab[i];
        'attempt: for _ in 0..TRIES {
            let mut shades: Vec<[f64; 3]> = Vec::with_capacity(p.per_name);
            let mut lightness: Vec<f64> = Vec::with_capacity(p.per_name);
            for _ in 0..p.per_name {
                let dl = rng.random_range(-p.spread..=p.spread);
                let rgb =
                    to_rgb([(base[0] + dl).clamp(0.0, 100.0), base[1], base[2]]).map(|c| f64::from(c as f32));
                let lab = to_lab(rgb);
                if self.table.nearest(lab) != i || lightness.iter().any(|l| (l - lab[0]).abs() < p.gap) {
                    continue 'attempt;
                }
                lightness.push(lab[0]);
                shades.push(rgb);
            }
            return Some(shades);
        }
        None
    }
}

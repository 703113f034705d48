//! `MethodSpec`: which alignment method to fit (feature alignment, relative representations and the
//! functional family), as written in an experiment's TOML; `Solver`: how the functional system is
//! solved.

use super::error::AlignError;
use serde::{Deserialize, Serialize};

/// Default `lambda` of `ridge`.
pub const DEFAULT_RIDGE_LAMBDA: f64 = 1.0;
/// `reg` of `cca` when it is unset and there are too few anchors to cross-validate it.
pub const DEFAULT_CCA_REG: f64 = 1e-3;

fn default_ridge_lambda() -> f64 {
    DEFAULT_RIDGE_LAMBDA
}

/// Default `k` of `laplacian` (neighbours of each row in the kNN graph).
pub const DEFAULT_LAPLACIAN_K: usize = 10;

fn default_laplacian_k() -> usize {
    DEFAULT_LAPLACIAN_K
}

/// Default `src-reweight` and `trg-reweight` of `vecmap`.
const DEFAULT_VECMAP_REWEIGHT: f64 = 0.5;

fn default_vecmap_reweight() -> f64 {
    DEFAULT_VECMAP_REWEIGHT
}

fn default_true() -> bool {
    true
}

/// How the functional alignment's linear system is solved (`solver = "auto"` in TOML).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Solver {
    /// `exact` when `d_a · d_b ≤ 2500`, `cg` otherwise (hyper-parameter search always uses `cg`,
    /// which is much cheaper there).
    #[default]
    Auto,
    /// The vectorised `(d_a·d_b)²` system, by a Cholesky factorisation (cubic in `d_a·d_b`: only
    /// for small maps).
    Exact,
    /// Conjugate gradient on matrices, preconditioned by the exactly inverted Sylvester part.
    Cg,
}

impl Solver {
    /// The solver's name, as written in TOML.
    pub fn name(self) -> &'static str {
        match self {
            Solver::Auto => "auto",
            Solver::Exact => "exact",
            Solver::Cg => "cg",
        }
    }
}

/// How an operator acts on a space's rows, as the functional family fits it
/// (`operator-form = "affine"` on `functional`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum OperatorForm {
    /// `x ↦ x F + c`: a full affine map, ridge towards the identity (the default).
    #[default]
    Affine,
    /// `x ↦ x + c`: a relation as one displacement vector (the mean of image − input), as word
    /// analogies are usually modelled.
    Offset,
}

/// How the functional family chooses an unset `lambda` and `mu`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum WeightSelection {
    /// Cross-validation on folds of the anchors (held-out cosine); needs 3 or more anchors.
    #[default]
    Cv,
    /// No labels at all: MUSE's criterion, the mean cosine between unpaired source rows mapped and
    /// their CSLS translations among unpaired target rows, maximised over the grid.
    Criterion,
}

/// A feature-alignment method: how a map from the source space to the target space is fitted
/// from paired rows `x` (n × d_a) and `y` (n × d_b), after [`Preprocess`](super::Preprocess).
///
/// In TOML: `method = { kind = "ridge", lambda = 0.1 }`. Unknown keys are errors.
///
/// Every method except `cca`, `vecmap` and `relative` maps source rows into the target space
/// (`x ↦ x W`, plus a bias for `affine`) and leaves target rows as they are after preprocessing;
/// `cca` maps both sides into a shared canonical space, `vecmap` both into a common
/// `min(d_a, d_b)`-dimensional space, `relative` both into the space of similarities to the
/// anchors.
///
/// `functional` and `laplacian` need more than anchors (operators, unpaired rows): they are fitted
/// with [`FitData`](super::FitData), given to [`Fit::data`](super::Fit::data); without it they fail
/// with [`AlignError::MissingInput`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum MethodSpec {
    /// Least squares: `W = argmin ‖X W − Y‖²_F`, the minimum-norm solution (computed by SVD, with
    /// singular values below `max(n, d_a) · ε · σ_max` treated as zero). Works with fewer pairs than
    /// dimensions (then it interpolates the anchors exactly). Needs at least 1 pair.
    LeastSquares {},
    /// Ridge regression: `W = argmin ‖X W − Y‖²_F + lambda · ‖W‖²_F`, no bias.
    ///
    /// The data term is a sum over pairs (not a mean), so the same `lambda` regularises more
    /// strongly when there are fewer anchors; this is scikit-learn's `Ridge(alpha = lambda,
    /// fit_intercept = false)`. `X` is used as preprocessing leaves it: centred only if
    /// `preprocess.center` is on (use `affine` for an explicit, unpenalised bias). With
    /// unit-normalised rows, `XᵀX` has trace `n`, so each direction carries about `n / d_a`:
    /// `lambda` well below that is mild. `lambda = 0` is `least-squares`. Needs at least 1 pair.
    Ridge {
        /// Penalty on the squared Frobenius norm of `W`; finite and ≥ 0. Default 1.0.
        #[serde(default = "default_ridge_lambda")]
        lambda: f64,
    },
    /// Orthogonal Procrustes: `W = argmin ‖X W − Y‖_F` over `W` with orthonormal columns (or rows,
    /// when `d_a < d_b`), i.e. `W = U Vᵀ` from the SVD `XᵀY = U Σ Vᵀ`. Rotations preserve distances
    /// and angles in the source space. With fewer pairs than dimensions the part of `W` outside the
    /// anchors' span is an arbitrary completion. Needs at least 1 pair.
    Procrustes {
        /// Also fit a global scale `s` (`W = s U Vᵀ`, `s = tr Σ / ‖X‖²_F`). Default false.
        #[serde(default)]
        scaled: bool,
    },
    /// Canonical correlation analysis: both sides are centred (CCA subtracts its own means) and
    /// projected onto the `dim` pairs of directions with the largest correlation. The comparison
    /// space is the canonical space (each coordinate has unit variance on the anchors).
    /// Needs at least `dim + 1` pairs.
    Cca {
        /// Number of canonical directions kept; at most `min(d_a, d_b)`. Default (absent):
        /// `min(d_a, d_b, n − 1)`.
        #[serde(default)]
        dim: Option<usize>,
        /// Ridge on each covariance, relative to its mean variance:
        /// `C_xx + reg · (tr C_xx / d_a) · I` (same for `C_yy`); finite and ≥ 0. Needed when
        /// `n − 1 < d_a` or `d_b` (the covariances are then singular). Default (absent): chosen
        /// from [`CCA_REG_GRID`](crate::CCA_REG_GRID) by cross-validation on the anchors (1e-3
        /// with fewer than 4 anchors).
        #[serde(default)]
        reg: Option<f64>,
    },
    /// Affine map: `(W, b) = argmin ‖X W + 1 bᵀ − Y‖²_F + lambda · ‖W‖²_F`; the bias `b` is not
    /// penalised. Solved exactly by centring both sides, fitting `W` on the centred rows (minimum-norm
    /// least squares when `lambda = 0`, ridge otherwise), and `b = ȳ − x̄ W`. Needs at least 2 pairs.
    Affine {
        /// Penalty on the squared Frobenius norm of `W` (sum over pairs, as in `ridge`); finite and
        /// ≥ 0. Default 0 (plain affine least squares).
        #[serde(default)]
        lambda: f64,
    },
    /// VecMap's mapping step (Artetxe et al., 2018): both sides are mapped into a common
    /// `min(d_a, d_b)`-dimensional space. (1) Whitening: `W_x = (XᵀX)^{-1/2}`, `W_y = (YᵀY)^{-1/2}`
    /// (pseudo-inverse square roots: eigenvalues below `max(n, d) · ε · λ_max` are dropped, so it
    /// works with fewer pairs than dimensions); (2) orthogonal mapping: the SVD
    /// `(X W_x)ᵀ (Y W_y) = U S Vᵀ` gives `x ↦ x W_x U`, `y ↦ y W_y V`; (3) re-weighting: the
    /// source coordinates are scaled by `S^src-reweight`, the target's by `S^trg-reweight`;
    /// (4) de-whitening: the source side is multiplied by `Uᵀ W_x⁺ U`, the target by `Vᵀ W_y⁺ V`
    /// (each side gets its own metric back). Rows are not centred here (use `preprocess`). With
    /// `whiten = false` and both re-weights 0 this is orthogonal Procrustes into a common space.
    /// Needs at least 1 pair.
    Vecmap {
        /// Whiten each side before the orthogonal mapping. Default true.
        #[serde(default = "default_true")]
        whiten: bool,
        /// Exponent of the singular values scaling the source coordinates; finite and ≥ 0 (0: no
        /// re-weighting). Default 0.5.
        #[serde(default = "default_vecmap_reweight", rename = "src-reweight")]
        src_reweight: f64,
        /// Exponent of the singular values scaling the target coordinates; finite and ≥ 0.
        /// Default 0.5.
        #[serde(default = "default_vecmap_reweight", rename = "trg-reweight")]
        trg_reweight: f64,
        /// Undo the whitening afterwards, each side with its own whitening (only when `whiten` is
        /// on). Default true.
        #[serde(default = "default_true")]
        dewhiten: bool,
    },
    /// Relative representations: each side's (preprocessed) row is replaced by its cosine
    /// similarities to that side's (preprocessed) anchors, so the comparison space has one
    /// coordinate per anchor (`n`). Nothing is fitted across the spaces beyond the pairing of the
    /// anchors; both `map_source` and `map_target` transform. Needs at least 1 pair.
    Relative {},
    /// Functional alignment: `T` minimises
    /// `‖X T − Y‖² + Σ_k λ_k (‖F_k T − T G_k‖² + ‖a_k T − b_k‖²) + μ ‖T‖²`, where `(F_k, a_k)`
    /// and `(G_k, b_k)` are the affine actions of the k-th pair of
    /// corresponding operators on the source and on the target space, each fitted from within-space
    /// pairs only (see [`functional`](super::functional) for the normalisation of `lambda` and
    /// `mu`). Unset `lambda`/`mu` are chosen by cross-validation on the anchors. Needs at least 1
    /// pair and at least one operator pair.
    Functional {
        /// Global weight of the operators relative to the anchors (`1` = the operators together
        /// weigh as much as the anchors); finite and ≥ 0. Default: cross-validated.
        #[serde(default)]
        lambda: Option<f64>,
        /// Ridge on `‖T‖²_F` relative to the anchors' mean squared norm per source dimension
        /// (`‖X‖²_F / d_a`); finite and ≥ 0. Default: cross-validated.
        #[serde(default)]
        mu: Option<f64>,
        /// Replace `T` by its nearest matrix with orthonormal columns (rows when `d_a < d_b`) after
        /// solving. Default false.
        #[serde(default)]
        orthogonal: bool,
        /// How the linear system is solved. Default `auto`.
        #[serde(default)]
        solver: Solver,
        /// Control: pair the target operators with a derangement of the source operators (from the
        /// fit's seed), so every correspondence is wrong. Needs at least 2 operator pairs.
        /// Default false.
        #[serde(default, rename = "shuffle-operators")]
        shuffle_operators: bool,
        /// How each operator acts: `affine` (`x ↦ xF + c`) or `offset` (`x ↦ x + c`).
        /// Default `affine`.
        #[serde(default, rename = "operator-form")]
        operator_form: OperatorForm,
        /// Drop every operator pair whose held-out action R² (of the chosen form) is below this on
        /// either side; the report counts them as skipped. Default: keep all.
        #[serde(default, rename = "min-r2")]
        min_r2: Option<f64>,
        /// How unset `lambda` and `mu` are chosen: `cv` (cross-validation on the anchors) or
        /// `criterion` (label-free, on unpaired rows of both spaces). Default `cv`.
        #[serde(default)]
        select: WeightSelection,
    },
    /// Functional alignment with one operator per side: kNN averaging on that side's unpaired rows
    /// (`x ↦` mean of its `k` nearest neighbours by cosine, i.e. `I − L` for the random-walk
    /// Laplacian `L` of the kNN graph), its affine action fitted like any operator's. Commuting
    /// with it is commuting with the graph Laplacian, as latent functional maps do. Needs at least
    /// 1 pair, and at least `k + 1` unpaired rows on each side.
    Laplacian {
        /// Neighbours per row in the kNN graph; ≥ 1. Default 10.
        #[serde(default = "default_laplacian_k")]
        k: usize,
        /// As in `functional`. Default: cross-validated.
        #[serde(default)]
        lambda: Option<f64>,
        /// As in `functional`. Default: cross-validated.
        #[serde(default)]
        mu: Option<f64>,
    },
}

impl MethodSpec {
    /// The method's `kind`, as written in TOML.
    pub fn kind(&self) -> &'static str {
        match self {
            MethodSpec::LeastSquares {} => "least-squares",
            MethodSpec::Ridge { .. } => "ridge",
            MethodSpec::Procrustes { .. } => "procrustes",
            MethodSpec::Cca { .. } => "cca",
            MethodSpec::Affine { .. } => "affine",
            MethodSpec::Relative {} => "relative",
            MethodSpec::Vecmap { .. } => "vecmap",
            MethodSpec::Functional { .. } => "functional",
            MethodSpec::Laplacian { .. } => "laplacian",
        }
    }

    /// Whether the map is a rotation (orthonormal columns or rows, times a scale for a scaled
    /// Procrustes): `procrustes`, and `functional` with `orthogonal = true`. From a space into
    /// one of at least its dimension such a map keeps every inner product up to scale, so
    /// rotation-invariant scores (CKA, mutual kNN) of the mapped space equal those of the space
    /// itself, whatever the anchors.
    pub fn maps_by_rotation(&self) -> bool {
        matches!(self, MethodSpec::Procrustes { .. } | MethodSpec::Functional { orthogonal: true, .. })
    }

    /// Checks the parameters' ranges (not the data): finite, non-negative penalties, `dim ≥ 1`,
    /// `k ≥ 1`.
    pub fn validate(&self) -> Result<(), AlignError> {
        let penalty = |field: &str, value: f64| {
            if value.is_finite() && value >= 0.0 {
                Ok(())
            } else {
                Err(AlignError::InvalidParameter {
                    field: field.to_owned(),
                    detail: format!("must be a finite number ≥ 0, got {value}"),
                })
            }
        };
        let optional = |field: &str, value: Option<f64>| value.map_or(Ok(()), |v| penalty(field, v));
        match self {
            MethodSpec::LeastSquares {} | MethodSpec::Procrustes { .. } | MethodSpec::Relative {} => Ok(()),
            MethodSpec::Functional { lambda, mu, min_r2, .. } => {
                optional("functional.lambda", *lambda)?;
                optional("functional.mu", *mu)?;
                match min_r2 {
                    Some(r) if !r.is_finite() || *r > 1.0 => Err(AlignError::InvalidParameter {
                        field: "functional.min-r2".to_owned(),
                        detail: format!("must be a finite number ≤ 1, got {r}"),
                    }),
                    _ => Ok(()),
                }
            }
            MethodSpec::Laplacian { k, lambda, mu } => {
                optional("laplacian.lambda", *lambda)?;
                optional("laplacian.mu", *mu)?;
                if *k == 0 {
                    return Err(AlignError::InvalidParameter {
                        field: "laplacian.k".to_owned(),
                        detail: "must be at least 1".to_owned(),
                    });
                }
                Ok(())
            }
            MethodSpec::Ridge { lambda } => penalty("ridge.lambda", *lambda),
            MethodSpec::Affine { lambda } => penalty("affine.lambda", *lambda),
            MethodSpec::Vecmap { src_reweight, trg_reweight, .. } => {
                penalty("vecmap.src-reweight", *src_reweight)?;
                penalty("vecmap.trg-reweight", *trg_reweight)
            }
            MethodSpec::Cca { dim, reg } => {
                optional("cca.reg", *reg)?;
                if *dim == Some(0) {
                    return Err(AlignError::InvalidParameter {
                        field: "cca.dim".to_owned(),
                        detail: "must be at least 1".to_owned(),
                    });
                }
                Ok(())
            }
        }
    }

    /// Whether the method reads the operators of [`FitData`](crate::FitData) (`functional`).
    pub fn reads_operators(&self) -> bool {
        matches!(self, MethodSpec::Functional { .. })
    }

    /// The smallest number of pairs the method accepts (for `cca`, with its `dim` if given).
    /// `functional` accepts none: its operators alone can determine a map (the `operators`
    /// zero-anchor start).
    pub fn min_pairs(&self) -> usize {
        match self {
            MethodSpec::Functional { .. } => 0,
            MethodSpec::LeastSquares {}
            | MethodSpec::Ridge { .. }
            | MethodSpec::Procrustes { .. }
            | MethodSpec::Relative {}
            | MethodSpec::Vecmap { .. }
            | MethodSpec::Laplacian { .. } => 1,
            MethodSpec::Affine { .. } => 2,
            MethodSpec::Cca { dim, .. } => dim.unwrap_or(1) + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<MethodSpec, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn kinds_parse_with_defaults() {
        assert_eq!(parse(r#"{"kind":"least-squares"}"#).unwrap(), MethodSpec::LeastSquares {});
        assert_eq!(parse(r#"{"kind":"ridge"}"#).unwrap(), MethodSpec::Ridge { lambda: 1.0 });
        assert_eq!(parse(r#"{"kind":"ridge","lambda":0.5}"#).unwrap(), MethodSpec::Ridge { lambda: 0.5 });
        assert_eq!(parse(r#"{"kind":"procrustes"}"#).unwrap(), MethodSpec::Procrustes { scaled: false });
        assert_eq!(
            parse(r#"{"kind":"procrustes","scaled":true}"#).unwrap(),
            MethodSpec::Procrustes { scaled: true }
        );
        assert_eq!(parse(r#"{"kind":"cca"}"#).unwrap(), MethodSpec::Cca { dim: None, reg: None });
        assert_eq!(
            parse(r#"{"kind":"cca","dim":10,"reg":0}"#).unwrap(),
            MethodSpec::Cca { dim: Some(10), reg: Some(0.0) }
        );
        assert_eq!(parse(r#"{"kind":"affine"}"#).unwrap(), MethodSpec::Affine { lambda: 0.0 });
        assert_eq!(parse(r#"{"kind":"relative"}"#).unwrap(), MethodSpec::Relative {});
        assert_eq!(
            parse(r#"{"kind":"vecmap"}"#).unwrap(),
            MethodSpec::Vecmap { whiten: true, src_reweight: 0.5, trg_reweight: 0.5, dewhiten: true }
        );
        assert_eq!(
            parse(r#"{"kind":"vecmap","whiten":false,"src-reweight":0,"trg-reweight":1,"dewhiten":false}"#)
                .unwrap(),
            MethodSpec::Vecmap { whiten: false, src_reweight: 0.0, trg_reweight: 1.0, dewhiten: false }
        );
        assert_eq!(
            parse(r#"{"kind":"functional"}"#).unwrap(),
            MethodSpec::Functional {
                lambda: None,
                mu: None,
                orthogonal: false,
                solver: Solver::Auto,
                shuffle_operators: false,
                operator_form: OperatorForm::Affine,
                min_r2: None,
                select: WeightSelection::Cv,
            }
        );
        assert_eq!(
            parse(
                r#"{"kind":"functional","lambda":10,"mu":0.01,"orthogonal":true,"solver":"cg","shuffle-operators":true}"#
            )
            .unwrap(),
            MethodSpec::Functional {
                lambda: Some(10.0),
                mu: Some(0.01),
                orthogonal: true,
                solver: Solver::Cg,
                shuffle_operators: true,
                operator_form: OperatorForm::Affine,
                min_r2: None,
                select: WeightSelection::Cv,
            }
        );
        assert_eq!(
            parse(r#"{"kind":"laplacian"}"#).unwrap(),
            MethodSpec::Laplacian { k: 10, lambda: None, mu: None }
        );
        assert_eq!(
            parse(r#"{"kind":"laplacian","k":5,"lambda":1}"#).unwrap(),
            MethodSpec::Laplacian { k: 5, lambda: Some(1.0), mu: None }
        );
    }

    #[test]
    fn unknown_kinds_and_keys_are_rejected() {
        let err = parse(r#"{"kind":"procrustes","scale":true}"#).unwrap_err().to_string();
        assert!(err.contains("unknown field `scale`"), "{err}");
        let err = parse(r#"{"kind":"least-squares","lambda":1}"#).unwrap_err().to_string();
        assert!(err.contains("unknown field `lambda`"), "{err}");
        let err = parse(r#"{"kind":"svd"}"#).unwrap_err().to_string();
        assert!(err.contains("unknown variant `svd`"), "{err}");
        assert!(parse(r#"{"lambda":1}"#).is_err());
        let err = parse(r#"{"kind":"functional","shuffle_operators":true}"#).unwrap_err().to_string();
        assert!(err.contains("unknown field `shuffle_operators`"), "{err}");
        let err = parse(r#"{"kind":"functional","solver":"lu"}"#).unwrap_err().to_string();
        assert!(err.contains("unknown variant `lu`"), "{err}");
        let err = parse(r#"{"kind":"relative","k":3}"#).unwrap_err().to_string();
        assert!(err.contains("unknown field `k`"), "{err}");
        let err = parse(r#"{"kind":"vecmap","src_reweight":1}"#).unwrap_err().to_string();
        assert!(err.contains("unknown field `src_reweight`"), "{err}");
        let err = parse(r#"{"kind":"vecmap","reweight":1}"#).unwrap_err().to_string();
        assert!(err.contains("unknown field `reweight`"), "{err}");
    }

    #[test]
    fn round_trips_and_kind_names_match_serde() {
        for spec in [
            MethodSpec::LeastSquares {},
            MethodSpec::Ridge { lambda: 0.25 },
            MethodSpec::Procrustes { scaled: true },
            MethodSpec::Cca { dim: Some(3), reg: Some(0.1) },
            MethodSpec::Affine { lambda: 2.0 },
            MethodSpec::Relative {},
            MethodSpec::Vecmap { whiten: false, src_reweight: 0.0, trg_reweight: 1.5, dewhiten: true },
            MethodSpec::Functional {
                lambda: Some(1.0),
                mu: None,
                orthogonal: true,
                solver: Solver::Exact,
                shuffle_operators: true,
                operator_form: OperatorForm::Affine,
                min_r2: None,
                select: WeightSelection::Cv,
            },
            MethodSpec::Laplacian { k: 7, lambda: None, mu: Some(0.5) },
        ] {
            let expected = match spec {
                MethodSpec::Affine { .. } => 2,
                MethodSpec::Cca { dim: Some(k), .. } => k + 1,
                MethodSpec::Functional { .. } => 0,
                _ => 1,
            };
            assert_eq!(spec.min_pairs(), expected, "{spec:?}");
            let json = serde_json::to_value(&spec).unwrap();
            assert_eq!(json["kind"], spec.kind());
            assert_eq!(serde_json::from_value::<MethodSpec>(json).unwrap(), spec);
        }
    }

    #[test]
    fn parameters_out_of_range_are_rejected() {
        let bad = [
            MethodSpec::Ridge { lambda: -1.0 },
            MethodSpec::Ridge { lambda: f64::NAN },
            MethodSpec::Affine { lambda: f64::INFINITY },
            MethodSpec::Cca { dim: Some(0), reg: Some(0.0) },
            MethodSpec::Cca { dim: None, reg: Some(-0.1) },
            MethodSpec::Laplacian { k: 0, lambda: None, mu: None },
            MethodSpec::Laplacian { k: 3, lambda: Some(-1.0), mu: None },
            MethodSpec::Vecmap { whiten: true, src_reweight: -0.5, trg_reweight: 0.5, dewhiten: true },
            MethodSpec::Vecmap { whiten: true, src_reweight: 0.5, trg_reweight: f64::NAN, dewhiten: true },
            MethodSpec::Functional {
                lambda: None,
                mu: Some(f64::NAN),
                orthogonal: false,
                solver: Solver::Auto,
                shuffle_operators: false,
                operator_form: OperatorForm::Affine,
                min_r2: None,
                select: WeightSelection::Cv,
            },
        ];
        for spec in bad {
            assert!(matches!(spec.validate(), Err(AlignError::InvalidParameter { .. })), "{spec:?}");
        }
        assert!(MethodSpec::Ridge { lambda: 0.0 }.validate().is_ok());
        assert!(MethodSpec::Vecmap { whiten: false, src_reweight: 0.0, trg_reweight: 0.0, dewhiten: false }
            .validate()
            .is_ok());
        assert!(MethodSpec::Laplacian { k: 1, lambda: Some(0.0), mu: Some(0.0) }.validate().is_ok());
        let err = MethodSpec::Laplacian { k: 0, lambda: None, mu: None }.validate().unwrap_err();
        assert_eq!(err.to_string(), "invalid laplacian.k: must be at least 1");
        assert_eq!([Solver::Auto, Solver::Exact, Solver::Cg].map(Solver::name), ["auto", "exact", "cg"]);
    }
}

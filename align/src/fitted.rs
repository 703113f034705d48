//! `Fit`, the one entry point for fitting, and the `FittedMap` it returns: preprocessing plus a
//! method, fitted on raw paired rows (and, for the functional family, on `FitData`: operators and
//! unpaired rows), applied to any later rows as an `Alignment`.

use super::error::{AlignError, Space};
use super::functional::{self, OperatorPair, SolveOptions};
use super::kernels;
use super::linear::{self, AffineMap, LinearMap};
use super::memo::ActionMemo;
use super::method::{MethodSpec, OperatorForm, Solver, WeightSelection};
use super::operator::{fit_action_cost, fit_action_in, neighbour_mean, parallel_map, OperatorAction};
use super::preprocess::{FittedPreprocess, Preprocess};
use super::scalar::Real;
use super::warm::WarmStart;
use super::Alignment;
use faer::{Mat, MatRef, Par};
use std::collections::BTreeMap;

/// Rows of one operator of one space: inputs and their images, paired by row; raw (before
/// preprocessing), `f32`.
#[derive(Clone, Debug)]
pub struct OperatorRows<'a> {
    /// The operator's name (e.g. `plural`, `transpose +2`), used in errors.
    pub name: String,
    /// Rows the operator was applied to (m × d of the space).
    pub input: MatRef<'a, f32>,
    /// Their images under the operator, row i the image of input row i (m × d).
    pub output: MatRef<'a, f32>,
    /// The same rows already preprocessed, which a fit with that preprocessing reads instead of
    /// preprocessing `input` and `output` again; `None`: every fit preprocesses them.
    pub preprocessed: Option<Preprocessed<'a>>,
}

impl<'a> OperatorRows<'a> {
    /// An operator's raw rows, to be preprocessed by each fit.
    pub fn new(name: impl Into<String>, input: MatRef<'a, f32>, output: MatRef<'a, f32>) -> Self {
        OperatorRows { name: name.into(), input, output, preprocessed: None }
    }
}

/// An operator's rows as [`preprocess_rows`] turns them out for one preprocessing (`by`, its
/// [`FittedPreprocess::fingerprint`]), in `f64`. Fits that share a preprocessing fitted once on a
/// pool (every anchor count, the nulls, the shuffled control and every round of refinement and
/// self-learning) would otherwise preprocess the same thousands of rows at each fit, the larger
/// part of a self-learning round's time. A fit in `f64` whose preprocessing has the fingerprint
/// `by` reads these rows, the values it would compute, bit for bit; any other fit ignores them.
#[derive(Clone, Copy, Debug)]
pub struct Preprocessed<'a> {
    /// The fingerprint of the preprocessing that made them.
    pub by: u64,
    /// `input`, preprocessed.
    pub input: MatRef<'a, f64>,
    /// `output`, preprocessed.
    pub output: MatRef<'a, f64>,
}

/// What the functional family may use beyond the anchor pairs; none of it pairs items across
/// spaces.
#[derive(Clone, Debug, Default)]
pub struct FitData<'a> {
    /// Operators of the source space (for `functional`); the k-th corresponds to the k-th target
    /// operator.
    pub source_operators: Vec<OperatorRows<'a>>,
    /// Operators of the target space, in the order of their source counterparts.
    pub target_operators: Vec<OperatorRows<'a>>,
    /// Unpaired rows of the source space (for `laplacian`: its kNN graph), raw.
    pub source_rows: Option<MatRef<'a, f32>>,
    /// Unpaired rows of the target space (for `laplacian`), raw.
    pub target_rows: Option<MatRef<'a, f32>>,
    /// Seed of the cross-validation folds and of the `shuffle-operators` control.
    pub seed: u64,
    /// Where operator actions fitted by earlier fits are kept (see [`ActionMemo`]); `None`: every
    /// fit fits its own. It never changes a result, only the time.
    pub memo: Option<&'a ActionMemo>,
    /// Where a chain of functional fits (refinement or self-learning rounds) keeps its last map,
    /// which the next fit's conjugate gradient starts from; `None`: every solve starts at zero.
    /// Results agree to the solver's tolerance either way.
    pub warm: Option<&'a WarmStart>,
}

/// The error of `functional` without (usable) operators.
pub(crate) fn missing_operators(what: &str, got: &str) -> AlignError {
    AlignError::MissingInput {
        what: what.to_owned(),
        needed: "at least one pair of corresponding operators, each with 2 or more (input, image) rows \
                 on both sides (FitData::source_operators and ::target_operators, paired by position, \
                 given to Fit::data)"
            .to_owned(),
        got: got.to_owned(),
    }
}

/// The error of `laplacian` without enough unpaired rows.
pub(crate) fn missing_rows(k: usize, got: &str) -> AlignError {
    AlignError::MissingInput {
        what: format!("laplacian with k = {k}"),
        needed: format!(
            "at least {} unpaired rows of each space (FitData::source_rows and ::target_rows, given \
             to Fit::data)",
            k + 1
        ),
        got: got.to_owned(),
    }
}

/// A fitted alignment: each space's fitted preprocessing followed by the method's maps.
///
/// `T` is the precision it was fitted and is applied in; as an [`Alignment`] it takes and returns
/// `f32` rows whatever `T` is.
#[derive(Clone, Debug, PartialEq)]
pub struct FittedMap<T: Real = f64> {
    /// The method it was fitted with.
    pub spec: MethodSpec,
    /// The source space's preprocessing, fitted on the source rows.
    pub source_preprocess: FittedPreprocess<T>,
    /// The target space's preprocessing, fitted on the target rows.
    pub target_preprocess: FittedPreprocess<T>,
    /// The method's maps on preprocessed rows.
    pub map: LinearMap<T>,
    /// Diagnostics of the fit, by name: for `cca` without `reg`, the chosen `reg`, `cv-folds` and
    /// `cv-score` (mean held-out margin); for `functional` and `laplacian` the chosen `lambda` and
    /// `mu`, the conjugate-gradient `iterations` (0 for the exact solver), the number of
    /// `operators` used and `operators-skipped`, the relative `residual` of the normal equations,
    /// `converged` (1 or 0), and, when cross-validated, `cv-folds` and `cv-score` (mean held-out
    /// cosine), and `lambda-given` / `mu-given` (1) for a weight the method set rather than the fit
    /// chose. Empty for the other methods.
    pub details: BTreeMap<String, f64>,
}

impl<T: Real> FittedMap<T> {
    /// Dimension of the source rows it accepts.
    pub fn source_dim(&self) -> usize {
        self.source_preprocess.dim_in()
    }

    /// Dimension of the target rows it accepts.
    pub fn target_dim(&self) -> usize {
        self.target_preprocess.dim_in()
    }

    /// Dimension of the comparison space (where mapped source rows and target rows meet).
    pub fn output_dim(&self) -> usize {
        self.map.dim_out()
    }

    /// Maps source rows (n × `source_dim`) into the comparison space.
    pub fn try_map_source(&self, x: MatRef<'_, T>) -> Result<Mat<T>, AlignError> {
        if x.ncols() != self.source_dim() {
            return Err(AlignError::DimensionMismatch {
                space: Space::Source,
                expected: self.source_dim(),
                got: x.ncols(),
            });
        }
        if self.source_preprocess.is_identity() {
            return Ok(self.map.source.apply(x));
        }
        let z = self.source_preprocess.apply(x)?;
        Ok(self.map.source.apply(z.as_ref()))
    }

    /// Maps target rows (n × `target_dim`) into the comparison space.
    pub fn try_map_target(&self, y: MatRef<'_, T>) -> Result<Mat<T>, AlignError> {
        let z = self.target_preprocess.apply(y)?;
        Ok(match &self.map.target {
            Some(target) => target.apply(z.as_ref()),
            None => z,
        })
    }
}

/// How [`Fit`] preprocesses each side.
#[derive(Clone, Debug)]
enum Preprocessing<'a, T: Real> {
    /// Fitted on each side's paired rows (`None`: no preprocessing).
    OnPairs(Option<&'a Preprocess>),
    /// Already fitted (e.g. on every row of each space), applied to the pairs.
    Fitted { source: FittedPreprocess<T>, target: FittedPreprocess<T> },
}

/// The one entry point for fitting an alignment: a method, how each side is preprocessed, and the
/// functional family's [`FitData`]; [`run`](Self::run) fits it on paired rows in precision `T`.
///
/// ```
/// use commute_align::{Fit, MethodSpec, Preprocess};
/// use faer::Mat;
///
/// let x = Mat::<f64>::from_fn(12, 2, |i, j| (i * (j + 2)) as f64 % 5.0 - 2.0);
/// let y = Mat::<f64>::from_fn(12, 2, |i, j| 3.0 * x[(i, j)]);
/// let spec = MethodSpec::Procrustes { scaled: true };
/// let map = Fit::new(&spec).run(x.as_ref(), y.as_ref()).unwrap();
/// assert!((map.map.scale.unwrap() - 3.0).abs() < 1e-9);
/// // The same method with each side centred first (statistics of the pairs):
/// let centred = Preprocess { center: true, ..Preprocess::none() };
/// let map = Fit::new(&spec).preprocess(&centred).run(x.as_ref(), y.as_ref()).unwrap();
/// assert_eq!(map.source_dim(), 2);
/// ```
#[derive(Clone, Debug)]
pub struct Fit<'a, T: Real = f64> {
    spec: &'a MethodSpec,
    preprocess: Preprocessing<'a, T>,
    data: Option<&'a FitData<'a>>,
}

impl<'a, T: Real> Fit<'a, T> {
    /// Fits `spec` with no preprocessing and no [`FitData`] (so `functional` and `laplacian` fail
    /// with [`AlignError::MissingInput`]) until told otherwise.
    pub fn new(spec: &'a MethodSpec) -> Self {
        Fit { spec, preprocess: Preprocessing::OnPairs(None), data: None }
    }

    /// Fits `pre` on each side's paired rows before the method (the usual case).
    pub fn preprocess(mut self, pre: &'a Preprocess) -> Self {
        self.preprocess = Preprocessing::OnPairs(Some(pre));
        self
    }

    /// Uses each side's already-fitted preprocessing (fitted, say, on every row of each space, or
    /// kept from an earlier fit so that the spaces do not move between refits).
    pub fn preprocessed(mut self, source: FittedPreprocess<T>, target: FittedPreprocess<T>) -> Self {
        self.preprocess = Preprocessing::Fitted { source, target };
        self
    }

    /// The functional family's operators, unpaired rows and seed (ignored by the other methods).
    /// Their rows are raw: the fitted preprocessing is applied to them as to the pairs.
    pub fn data(mut self, data: &'a FitData<'a>) -> Self {
        self.data = Some(data);
        self
    }

    /// Fits on `x` (n × d_a) and `y` (n × d_b), paired by row; `d_a` and `d_b` may differ.
    ///
    /// For `functional`: each operator's action is fitted with [`fit_action`](super::fit_action)
    /// on preprocessed rows, the actions in parallel (an operator pair with fewer than 2 rows on
    /// either side is skipped; none left is an error); then the map is solved, cross-validating
    /// unset weights on the anchors (folds seeded by [`FitData::seed`]). For `laplacian`: the single
    /// operator pair is kNN averaging ([`neighbour_mean`]) on each side's preprocessed unpaired
    /// rows. Either way the result is an ordinary linear map after preprocessing, with the choices
    /// in [`FittedMap::details`].
    pub fn run(self, x: MatRef<'_, T>, y: MatRef<'_, T>) -> Result<FittedMap<T>, AlignError> {
        let empty = FitData::default();
        let data = self.data.unwrap_or(&empty);
        linear::check_pairs(self.spec, x, y)?;
        match self.preprocess {
            Preprocessing::OnPairs(pre) => {
                let none = Preprocess::none();
                let pre = pre.unwrap_or(&none);
                if x.nrows() == 0 && pre.fits_statistics() {
                    return Err(AlignError::InvalidParameter {
                        field: "preprocess".to_owned(),
                        detail: "centring, PCA and whitening are fitted on the pairs, and there are none \
                                 (a fit from the operators alone): fit them on other rows (the host's \
                                 `fit-on = \"pool\"`, or Fit::preprocessed) or leave them out"
                            .to_owned(),
                    });
                }
                if !pre.is_identity() {
                    // Preprocessing statistics need finite rows; without it, the method checks.
                    kernels::check_pair_finite(x, y)?;
                }
                let (source, xp) = FittedPreprocess::fit_transform(pre, x, Space::Source)?;
                let (target, yp) = FittedPreprocess::fit_transform(pre, y, Space::Target)?;
                let xr = xp.as_ref().map_or(x, |m| m.as_ref());
                let yr = yp.as_ref().map_or(y, |m| m.as_ref());
                estimate(self.spec, source, target, xr, yr, data)
            }
            Preprocessing::Fitted { source, target } => {
                kernels::check_pair_finite(x, y)?;
                let xp = source.apply(x)?;
                let yp = target.apply(y)?;
                estimate(self.spec, source, target, xp.as_ref(), yp.as_ref(), data)
            }
        }
    }
}

impl<T: Real> Fit<'_, T> {
    /// Fits on rows that are already transformed by the preprocessing given to
    /// [`preprocessed`](Self::preprocessed) (n × its output width on each side, finite: the
    /// caller transformed them with it), without transforming them again: the fit
    /// [`run`](Self::run) makes of the raw rows, when every fit of a pool shares one preprocessing
    /// and the pool's rows are transformed once. Without a fitted preprocessing, the rows are
    /// taken as they are.
    pub fn run_transformed(self, xp: MatRef<'_, T>, yp: MatRef<'_, T>) -> Result<FittedMap<T>, AlignError> {
        let empty = FitData::default();
        let data = self.data.unwrap_or(&empty);
        linear::check_pairs(self.spec, xp, yp)?;
        let (source, target) = match self.preprocess {
            Preprocessing::Fitted { source, target } => (source, target),
            Preprocessing::OnPairs(_) => (
                FittedPreprocess::identity(xp.ncols(), Space::Source),
                FittedPreprocess::identity(yp.ncols(), Space::Target),
            ),
        };
        for (pre, rows, space) in [(&source, xp, Space::Source), (&target, yp, Space::Target)] {
            if rows.ncols() != pre.dim_out() {
                return Err(AlignError::DimensionMismatch {
                    space,
                    expected: pre.dim_out(),
                    got: rows.ncols(),
                });
            }
        }
        estimate(self.spec, source, target, xp, yp, data)
    }
}

impl Fit<'_, f64> {
    /// [`run`](Self::run) on `f32` rows, computing in `f64` (see the crate docs for why); the
    /// result is an [`Alignment`] on `f32` rows.
    pub fn run_f32(self, x: MatRef<'_, f32>, y: MatRef<'_, f32>) -> Result<FittedMap<f64>, AlignError> {
        self.run(to_precision(x).as_ref(), to_precision(y).as_ref())
    }
}

/// Fits `spec` on preprocessed anchors, given the fitted preprocessing (which the functional
/// family applies to `data`'s rows).
fn estimate<T: Real>(
    spec: &MethodSpec,
    mut source_preprocess: FittedPreprocess<T>,
    mut target_preprocess: FittedPreprocess<T>,
    xp: MatRef<'_, T>,
    yp: MatRef<'_, T>,
    data: &FitData<'_>,
) -> Result<FittedMap<T>, AlignError> {
    let (map, details) = match *spec {
        MethodSpec::Functional {
            lambda,
            mu,
            orthogonal,
            solver,
            shuffle_operators,
            operator_form,
            min_r2,
            select,
        } => {
            let (actions, skipped) =
                operator_actions(data, &source_preprocess, &target_preprocess, spec.kind())?;
            let (actions, skipped) = shape_actions(actions, skipped, operator_form, min_r2, spec.kind())?;
            let options = SolveOptions { solver, orthogonal, ..SolveOptions::default() };
            let options = with_start(options, data.warm, xp.ncols(), yp.ncols());
            let unpaired = match select {
                WeightSelection::Cv => None,
                WeightSelection::Criterion => {
                    Some(unpaired_rows(data, &source_preprocess, &target_preprocess)?)
                }
            };
            let choice =
                Choice { lambda, mu, options, shuffle: shuffle_operators, seed: data.seed, unpaired };
            solve_functional(xp, yp, &actions, skipped, &choice, data.warm)?
        }
        MethodSpec::Laplacian { k, lambda, mu } => {
            let sides = [
                (data.source_rows, &source_preprocess, Space::Source),
                (data.target_rows, &target_preprocess, Space::Target),
            ];
            let action = |(rows, pre, space): (Option<MatRef<'_, f32>>, &FittedPreprocess<T>, Space),
                          par: Par| {
                graph_action(rows, pre, space, k, data.memo, par)
            };
            let mut actions = parallel_map(sides.to_vec(), &action, kernels::par()).into_iter();
            let (Some(source), Some(target)) = (actions.next(), actions.next()) else {
                return Err(missing_rows(k, "no rows were given"));
            };
            let (source, target) = (source?, target?);
            let options = with_start(SolveOptions::default(), data.warm, xp.ncols(), yp.ncols());
            let choice = Choice { lambda, mu, options, shuffle: false, seed: data.seed, unpaired: None };
            solve_functional(xp, yp, &[(source, target)], 0, &choice, data.warm)?
        }
        _ => {
            let (map, details) = linear::fit_checked(spec, xp, yp)?;
            if matches!(spec, MethodSpec::Relative {}) {
                source_preprocess.push_unit_norm();
                target_preprocess.push_unit_norm();
            }
            (map, details)
        }
    };
    Ok(FittedMap { spec: spec.clone(), source_preprocess, target_preprocess, map, details })
}

/// Converts raw operator or graph rows to `T`, checks them and preprocesses them, as a fit does;
/// errors name the rows (`name`).
pub fn preprocess_rows<T: Real>(
    rows: MatRef<'_, f32>,
    pre: &FittedPreprocess<T>,
    space: Space,
    name: &str,
) -> Result<Mat<T>, AlignError> {
    let describe =
        |e: AlignError| AlignError::InvalidParameter { field: name.to_owned(), detail: e.to_string() };
    let converted = to_precision::<T>(rows);
    kernels::check_finite(converted.as_ref(), space).map_err(describe)?;
    pre.apply(converted.as_ref()).map_err(describe)
}

/// The actions of the usable operator pairs of `data` and how many pairs were skipped.
type ActionPairs<T> = Vec<(OperatorAction<T>, OperatorAction<T>)>;

fn operator_actions<T: Real>(
    data: &FitData<'_>,
    source_pre: &FittedPreprocess<T>,
    target_pre: &FittedPreprocess<T>,
    what: &str,
) -> Result<(ActionPairs<T>, usize), AlignError> {
    let (ns, nt) = (data.source_operators.len(), data.target_operators.len());
    if ns != nt {
        return Err(AlignError::InvalidParameter {
            field: format!("{what} operators"),
            detail: format!(
                "the k-th source operator corresponds to the k-th target operator, but {ns} source and \
                 {nt} target operators were given"
            ),
        });
    }
    if ns == 0 {
        return Err(missing_operators(what, "none were given"));
    }
    let mut skipped = 0;
    // Rows preprocessed ahead of the fit are read when they were made by this fit's preprocessing
    // and the fit computes in f64 (they are f64).
    let in_f64 = std::any::TypeId::of::<T>() == std::any::TypeId::of::<f64>();
    let fingerprints = in_f64.then(|| (source_pre.fingerprint(), target_pre.fingerprint()));
    let prepared = |op: &OperatorRows<'_>, space: Space| -> Option<(Mat<T>, Mat<T>)> {
        let by = match space {
            Space::Source => fingerprints?.0,
            Space::Target => fingerprints?.1,
        };
        let p = op.preprocessed.filter(|p| p.by == by)?;
        let copy = |m: MatRef<'_, f64>| Mat::from_fn(m.nrows(), m.ncols(), |i, j| T::from_f64(m[(i, j)]));
        Some((copy(p.input), copy(p.output)))
    };
    // Preprocessed (inputs, images) of each usable pair's source and target operator, in order.
    let mut rows = Vec::with_capacity(2 * ns);
    for (source, target) in data.source_operators.iter().zip(&data.target_operators) {
        for (rows, space) in [(source, Space::Source), (target, Space::Target)] {
            if rows.input.nrows() != rows.output.nrows() {
                return Err(AlignError::InvalidParameter {
                    field: format!("{space} operator `{}`", rows.name),
                    detail: format!(
                        "inputs and images must pair up, but there are {} inputs and {} images",
                        rows.input.nrows(),
                        rows.output.nrows()
                    ),
                });
            }
        }
        if source.input.nrows() < 2 || target.input.nrows() < 2 {
            skipped += 1;
            continue;
        }
        for (op, pre, space) in [(source, source_pre, Space::Source), (target, target_pre, Space::Target)] {
            if let Some(ready) = prepared(op, space) {
                rows.push(ready);
                continue;
            }
            let input =
                preprocess_rows(op.input, pre, space, &format!("{space} operator `{}` inputs", op.name))?;
            let output =
                preprocess_rows(op.output, pre, space, &format!("{space} operator `{}` images", op.name))?;
            rows.push((input, output));
        }
    }
    if rows.is_empty() {
        let got = format!("all {ns} operator pairs given have fewer than 2 rows on a side");
        return Err(missing_operators(what, &got));
    }
    // Fit the actions in parallel, costliest first.
    let mut order: Vec<usize> = (0..rows.len()).collect();
    let cost = |i: usize| fit_action_cost(rows[i].0.nrows(), rows[i].0.ncols());
    order.sort_by(|&a, &b| cost(b).total_cmp(&cost(a)));
    let fit = |i: usize, par: Par| {
        let (input, output) = (rows[i].0.as_ref(), rows[i].1.as_ref());
        match data.memo {
            Some(memo) => memo.get_or_fit(&[input, output], 0, || fit_action_in(input, output, par)),
            None => fit_action_in(input, output, par),
        }
    };
    let mut fitted: Vec<Option<Result<OperatorAction<T>, AlignError>>> =
        (0..rows.len()).map(|_| None).collect();
    for (i, action) in order.iter().zip(parallel_map(order.clone(), &fit, kernels::par())) {
        fitted[*i] = Some(action);
    }
    let mut actions = Vec::with_capacity(rows.len() / 2);
    let mut fitted = fitted.into_iter().flatten();
    while let (Some(source), Some(target)) = (fitted.next(), fitted.next()) {
        actions.push((source?, target?));
    }
    Ok((actions, skipped))
}

/// The actions in the chosen form (`offset`: `F = I` and the mean displacement, its held-out R²
/// the offset model's), without the pairs whose R² is below `min_r2` on either side (counted as
/// skipped). Fails when no pair is left.
fn shape_actions<T: Real>(
    actions: ActionPairs<T>,
    skipped: usize,
    form: OperatorForm,
    min_r2: Option<f64>,
    what: &str,
) -> Result<(ActionPairs<T>, usize), AlignError> {
    let given = actions.len();
    let offset = |a: OperatorAction<T>| -> OperatorAction<T> {
        let d = a.c.len();
        OperatorAction {
            f: Mat::identity(d, d),
            c: a.displacement.clone(),
            r2: a.r2_offset,
            lambda: f64::NAN,
            ..a
        }
    };
    let shaped: ActionPairs<T> = match form {
        OperatorForm::Affine => actions,
        OperatorForm::Offset => actions.into_iter().map(|(s, t)| (offset(s), offset(t))).collect(),
    };
    let kept: ActionPairs<T> = match min_r2 {
        None => shaped,
        Some(min) => shaped.into_iter().filter(|(s, t)| s.r2 >= min && t.r2 >= min).collect(),
    };
    let dropped = given - kept.len();
    if kept.is_empty() {
        let got = format!("all {given} usable operator pairs have a held-out R² below min-r2 on a side");
        return Err(missing_operators(what, &got));
    }
    Ok((kept, skipped + dropped))
}

/// The action of kNN averaging on one side's preprocessed unpaired rows.
fn graph_action<T: Real>(
    rows: Option<MatRef<'_, f32>>,
    pre: &FittedPreprocess<T>,
    space: Space,
    k: usize,
    memo: Option<&ActionMemo>,
    par: Par,
) -> Result<OperatorAction<T>, AlignError> {
    let Some(rows) = rows else {
        return Err(missing_rows(k, &format!("no {space} rows were given")));
    };
    if rows.nrows() < k + 1 {
        return Err(missing_rows(k, &format!("{} {space} rows were given", rows.nrows())));
    }
    let p = preprocess_rows(rows, pre, space, &format!("laplacian {space} rows"))?;
    let fit = || {
        let averaged = neighbour_mean(p.as_ref(), k);
        fit_action_in(p.as_ref(), averaged.as_ref(), par)
    };
    match memo {
        // Tagged apart from the operators' keys (one matrix, not two, and k).
        Some(memo) => memo.get_or_fit(&[p.as_ref()], 1 + k as u64, fit),
        None => fit(),
    }
}

/// The functional family's weights and solver choices.
struct Choice {
    lambda: Option<f64>,
    mu: Option<f64>,
    options: SolveOptions,
    shuffle: bool,
    seed: u64,
    /// Preprocessed unpaired rows of each side, when unset weights are chosen by the label-free
    /// criterion rather than cross-validation.
    unpaired: Option<(Mat<f32>, Mat<f32>)>,
}

/// Most unpaired rows per side that the label-free criterion reads.
const CRITERION_ROWS: usize = 4000;

/// The unpaired rows of both sides (`FitData::source_rows`, `::target_rows`), preprocessed, at most
/// [`CRITERION_ROWS`] each.
fn unpaired_rows<T: Real>(
    data: &FitData<'_>,
    source_pre: &FittedPreprocess<T>,
    target_pre: &FittedPreprocess<T>,
) -> Result<(Mat<f32>, Mat<f32>), AlignError> {
    let needed = || AlignError::MissingInput {
        what: "functional with select = \"criterion\"".to_owned(),
        needed: "unpaired rows of both spaces (FitData::source_rows and ::target_rows), 2 or more each"
            .to_owned(),
        got: "none".to_owned(),
    };
    let (Some(source), Some(target)) = (data.source_rows, data.target_rows) else {
        return Err(needed());
    };
    if source.nrows() < 2 || target.nrows() < 2 {
        return Err(needed());
    }
    let side = |rows: MatRef<'_, f32>, pre: &FittedPreprocess<T>, space: Space| {
        let rows = rows.subrows(0, rows.nrows().min(CRITERION_ROWS));
        preprocess_rows(rows, pre, space, &format!("{space} rows for the criterion"))
            .map(|m| to_f32(m.as_ref()))
    };
    Ok((side(source, source_pre, Space::Source)?, side(target, target_pre, Space::Target)?))
}

/// MUSE's criterion of a map `t` (preprocessed source → target): the mean cosine between mapped
/// source rows and their CSLS translations among the target rows (k = 10). NaN when the spaces
/// cannot be compared.
fn criterion<T: Real>(t: MatRef<'_, T>, (source, target): &(Mat<f32>, Mat<f32>)) -> f64 {
    let mapped = kernels::matmul(to_precision::<T>(source.as_ref()).as_ref(), t);
    crate::metrics::csls_matches(to_f32(mapped.as_ref()).as_ref(), target.as_ref(), 10, Default::default())
        .map_or(f64::NAN, |m| m.mean_forward_cosine())
}

fn solve_functional<T: Real>(
    xp: MatRef<'_, T>,
    yp: MatRef<'_, T>,
    actions: &[(OperatorAction<T>, OperatorAction<T>)],
    skipped: usize,
    choice: &Choice,
    warm: Option<&WarmStart>,
) -> Result<(LinearMap<T>, BTreeMap<String, f64>), AlignError> {
    let k = actions.len();
    let sources: Vec<usize> = if choice.shuffle {
        if k < 2 {
            return Err(AlignError::MissingInput {
                what: "functional with shuffle-operators = true".to_owned(),
                needed: "at least 2 usable operator pairs (to pair them wrongly)".to_owned(),
                got: format!("{k} {} usable", if k == 1 { "is" } else { "are" }),
            });
        }
        functional::derangement(k, choice.seed)
    } else {
        (0..k).collect()
    };
    let pairs: Vec<OperatorPair<'_, T>> =
        (0..k).map(|i| OperatorPair { source: &actions[sources[i]].0, target: &actions[i].1 }).collect();
    let mut details = BTreeMap::new();
    let (solution, cv) = match &choice.unpaired {
        Some(unpaired) if choice.lambda.is_none() || choice.mu.is_none() => {
            // Every grid point solved on all the anchors; the best criterion wins (ties keep the
            // earlier point, as cross-validation does).
            let lambdas = choice.lambda.map_or(functional::LAMBDA_GRID.to_vec(), |l| vec![l]);
            let mus = choice.mu.map_or(functional::MU_GRID.to_vec(), |m| vec![m]);
            let mut best: Option<(f64, functional::FunctionalSolution<T>, functional::CvReport)> = None;
            for &l in &lambdas {
                for &m in &mus {
                    let (solution, report) =
                        functional::solve_cv(xp, yp, &pairs, Some(l), Some(m), &choice.options, choice.seed)?;
                    let score = criterion(solution.t.as_ref(), unpaired);
                    if best.as_ref().is_none_or(|(b, _, _)| score > *b || (b.is_nan() && !score.is_nan())) {
                        best = Some((score, solution, report));
                    }
                }
            }
            let Some((score, solution, report)) = best else {
                return Err(AlignError::MissingInput {
                    what: "functional with select = \"criterion\"".to_owned(),
                    needed: "a grid of weights".to_owned(),
                    got: "none".to_owned(),
                });
            };
            details.insert("criterion".to_owned(), score);
            (solution, report)
        }
        _ => functional::solve_cv(xp, yp, &pairs, choice.lambda, choice.mu, &choice.options, choice.seed)?,
    };
    details.insert("lambda".to_owned(), solution.lambda);
    details.insert("mu".to_owned(), solution.mu);
    // A weight the method was given, not chosen by this fit.
    for (name, given) in [("lambda-given", choice.lambda), ("mu-given", choice.mu)] {
        if given.is_some() {
            details.insert(name.to_owned(), 1.0);
        }
    }
    details.insert("iterations".to_owned(), solution.iterations as f64);
    details.insert("operators".to_owned(), k as f64);
    details.insert("operators-skipped".to_owned(), skipped as f64);
    details.insert("residual".to_owned(), solution.residual);
    details.insert("converged".to_owned(), if solution.converged { 1.0 } else { 0.0 });
    details.insert("exact".to_owned(), if solution.solver == Solver::Exact { 1.0 } else { 0.0 });
    if cv.folds > 0 {
        details.insert("cv-folds".to_owned(), cv.folds as f64);
        details.insert("cv-score".to_owned(), cv.score);
    }
    if let Some(warm) = warm.filter(|_| !choice.options.orthogonal) {
        warm.put(Mat::from_fn(solution.t.nrows(), solution.t.ncols(), |i, j| solution.t[(i, j)].to_f64()));
    }
    let map =
        LinearMap { source: AffineMap::linear(solution.t), target: None, scale: None, correlations: None };
    Ok((map, details))
}

/// `options` with the conjugate gradient starting at the chain's last map, when there is one of
/// this shape (not for `orthogonal`, whose kept map is the polar factor, not the solution), and
/// then stopping at the chain's refit tolerance.
fn with_start(mut options: SolveOptions, warm: Option<&WarmStart>, d_a: usize, d_b: usize) -> SolveOptions {
    let Some(warm) = warm.filter(|_| !options.orthogonal) else { return options };
    options.start = warm.get(d_a, d_b);
    if options.start.is_some() {
        options.tolerance = warm.refit_tolerance().or(options.tolerance);
    }
    options
}

/// Converts `f32` rows to precision `T`.
pub fn to_precision<T: Real>(x: MatRef<'_, f32>) -> Mat<T> {
    Mat::from_fn(x.nrows(), x.ncols(), |i, j| T::from_f32(x[(i, j)]))
}

/// Converts rows of precision `T` to `f32`.
pub fn to_f32<T: Real>(x: MatRef<'_, T>) -> Mat<f32> {
    Mat::from_fn(x.nrows(), x.ncols(), |i, j| x[(i, j)].to_f32())
}

fn or_panic(result: Result<Mat<f32>, AlignError>) -> Mat<f32> {
    match result {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    }
}

/// Panics if the rows have the wrong number of columns (use the `try_` methods to get an error).
impl Alignment for FittedMap<f32> {
    fn map_source(&self, x: MatRef<'_, f32>) -> Mat<f32> {
        or_panic(self.try_map_source(x))
    }
    fn map_target(&self, y: MatRef<'_, f32>) -> Mat<f32> {
        or_panic(self.try_map_target(y))
    }
    fn details(&self) -> BTreeMap<String, f64> {
        self.details.clone()
    }
}

/// Converts to `f64`, maps, converts back. Panics if the rows have the wrong number of columns
/// (use the `try_` methods to get an error).
impl Alignment for FittedMap<f64> {
    fn map_source(&self, x: MatRef<'_, f32>) -> Mat<f32> {
        or_panic(self.try_map_source(to_precision::<f64>(x).as_ref()).map(|m| to_f32(m.as_ref())))
    }
    fn map_target(&self, y: MatRef<'_, f32>) -> Mat<f32> {
        or_panic(self.try_map_target(to_precision::<f64>(y).as_ref()).map(|m| to_f32(m.as_ref())))
    }
    fn details(&self) -> BTreeMap<String, f64> {
        self.details.clone()
    }
    fn map_preprocessed_source(&self, z: MatRef<'_, f64>, by: u64) -> Option<Mat<f32>> {
        let fits =
            z.ncols() == self.source_preprocess.dim_out() && self.source_preprocess.fingerprint() == by;
        fits.then(|| to_f32(self.map.source.apply(z).as_ref()))
    }
    fn map_preprocessed_target(&self, z: MatRef<'_, f64>, by: u64) -> Option<Mat<f32>> {
        let fits =
            z.ncols() == self.target_preprocess.dim_out() && self.target_preprocess.fingerprint() == by;
        fits.then(|| match &self.map.target {
            Some(target) => to_f32(target.apply(z).as_ref()),
            None => to_f32(z),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preprocess::Step;
    use crate::testing::{f32s, gaussian, max_diff, orthogonal, rng};

    fn all_methods() -> Vec<MethodSpec> {
        vec![
            MethodSpec::LeastSquares {},
            MethodSpec::Ridge { lambda: 1.0 },
            MethodSpec::Procrustes { scaled: false },
            MethodSpec::Procrustes { scaled: true },
            MethodSpec::Cca { dim: None, reg: Some(1e-3) },
            MethodSpec::Cca { dim: None, reg: None },
            MethodSpec::Affine { lambda: 0.0 },
            MethodSpec::Affine { lambda: 0.1 },
        ]
    }

    #[test]
    fn rectangular_maps_with_few_anchors_work_for_every_method() {
        let mut r = rng(61);
        let x = f32s(gaussian(&mut r, 12, 384).as_ref());
        let y = f32s(gaussian(&mut r, 12, 50).as_ref());
        let later = f32s(gaussian(&mut r, 3, 384).as_ref());
        let later_y = f32s(gaussian(&mut r, 3, 50).as_ref());
        for spec in all_methods() {
            for pre in [
                Preprocess::default(),
                Preprocess::none(),
                Preprocess { pca: Some(10), whiten: true, ..Preprocess::default() },
            ] {
                let map = Fit::new(&spec)
                    .preprocess(&pre)
                    .run_f32(x.as_ref(), y.as_ref())
                    .unwrap_or_else(|e| panic!("{spec:?} {pre:?}: {e}"));
                let out = map.map_source(later.as_ref());
                let target = map.map_target(later_y.as_ref());
                let expected = match (&spec, pre.pca) {
                    (MethodSpec::Cca { .. }, Some(k)) => k,
                    (MethodSpec::Cca { .. }, None) => 11,
                    (_, Some(k)) => k,
                    (_, None) => 50,
                };
                assert_eq!((out.nrows(), out.ncols()), (3, expected), "{spec:?} {pre:?}");
                assert_eq!((target.nrows(), target.ncols()), (3, expected), "{spec:?} {pre:?}");
                assert!(out.col_iter().all(|c| c.iter().all(|v| v.is_finite())));
            }
        }
    }

    #[test]
    fn procrustes_through_fit_recovers_the_rotation_and_maps_later_rows() {
        let mut r = rng(62);
        let x = gaussian(&mut r, 80, 16);
        let q = orthogonal(&mut r, 16);
        let y = kernels::matmul(x.as_ref(), q.as_ref());
        let spec = MethodSpec::Procrustes { scaled: false };
        let map = Fit::new(&spec).run(x.as_ref(), y.as_ref()).unwrap();
        assert!(max_diff(map.map.source.matrix.as_ref(), q.as_ref()) < 1e-10);
        let later = gaussian(&mut r, 5, 16);
        let mapped = map.try_map_source(later.as_ref()).unwrap();
        let expected = kernels::matmul(later.as_ref(), q.as_ref());
        assert!(max_diff(mapped.as_ref(), expected.as_ref()) < 1e-10);
        // The f32 entry point agrees (it computes in f64).
        let boxed = Fit::new(&spec).run_f32(f32s(x.as_ref()).as_ref(), f32s(y.as_ref()).as_ref()).unwrap();
        let mapped32 = boxed.map_source(f32s(later.as_ref()).as_ref());
        let mapped32 = Mat::from_fn(5, 16, |i, j| f64::from(mapped32[(i, j)]));
        assert!(max_diff(mapped32.as_ref(), expected.as_ref()) < 1e-5);
    }

    #[test]
    fn preprocessing_is_stored_and_applied_identically() {
        let mut r = rng(63);
        let x = gaussian(&mut r, 40, 10);
        let y = gaussian(&mut r, 40, 7);
        let pre = Preprocess { pca: Some(5), whiten: true, ..Preprocess::default() };
        let map = Fit::new(&MethodSpec::Ridge { lambda: 0.5 })
            .preprocess(&pre)
            .run(x.as_ref(), y.as_ref())
            .unwrap();
        let xp = map.source_preprocess.apply(x.as_ref()).unwrap();
        let yp = map.target_preprocess.apply(y.as_ref()).unwrap();
        let direct = Fit::new(&MethodSpec::Ridge { lambda: 0.5 })
            .run(xp.as_ref(), yp.as_ref())
            .map(|m| m.map)
            .unwrap();
        assert!(max_diff(direct.source.matrix.as_ref(), map.map.source.matrix.as_ref()) < 1e-12);
        // Mapping a subset of rows gives the same rows as mapping them all.
        let all = map.try_map_source(x.as_ref()).unwrap();
        let some = map.try_map_source(x.as_ref().subrows(10, 3)).unwrap();
        assert!(max_diff(all.as_ref().subrows(10, 3), some.as_ref()) < 1e-12);
        assert_eq!(map.try_map_target(y.as_ref()).unwrap(), yp);
        // Refit keeps the preprocessing.
        let refit = Fit::new(&MethodSpec::Procrustes { scaled: false })
            .preprocessed(map.source_preprocess.clone(), map.target_preprocess.clone())
            .run(x.as_ref().subrows(0, 20), y.as_ref().subrows(0, 20))
            .unwrap();
        assert_eq!(refit.source_preprocess, map.source_preprocess);
        assert_eq!(refit.output_dim(), 5);
    }

    #[test]
    fn bad_input_is_reported_for_every_method() {
        let mut r = rng(64);
        let x = gaussian(&mut r, 6, 4);
        let y = gaussian(&mut r, 6, 3);
        for spec in all_methods() {
            let err = Fit::new(&spec).run(x.as_ref(), y.as_ref().subrows(0, 5)).unwrap_err();
            assert_eq!(err, AlignError::RowCountMismatch { source_rows: 6, target_rows: 5 }, "{spec:?}");
            for pre in [Preprocess::default(), Preprocess::none()] {
                let mut bad = y.clone();
                bad[(4, 2)] = f64::INFINITY;
                let err = Fit::new(&spec).preprocess(&pre).run(x.as_ref(), bad.as_ref()).unwrap_err();
                assert!(
                    matches!(err, AlignError::NonFinite { space: Space::Target, row: 4, col: 2, .. }),
                    "{spec:?} {err}"
                );
                assert!(err.to_string().contains("inf"), "{err}");
                let mut bad = x.clone();
                bad[(0, 3)] = f64::NAN;
                let err = Fit::new(&spec).preprocess(&pre).run(bad.as_ref(), y.as_ref()).unwrap_err();
                assert!(
                    matches!(err, AlignError::NonFinite { space: Space::Source, row: 0, col: 3, .. }),
                    "{spec:?} {err}"
                );
                let err = Fit::new(&spec).run(bad.as_ref(), y.as_ref()).map(|m| m.map).unwrap_err();
                assert!(matches!(err, AlignError::NonFinite { space: Space::Source, .. }), "{spec:?} {err}");
            }
            let err = Fit::new(&spec).run(x.as_ref().subrows(0, 0), y.as_ref().subrows(0, 0)).unwrap_err();
            assert!(matches!(err, AlignError::TooFewPairs { got: 0, .. }), "{spec:?} {err}");
            let err = Fit::new(&spec).run(x.as_ref().subcols(0, 0), y.as_ref()).unwrap_err();
            assert!(matches!(err, AlignError::InvalidParameter { .. }), "{spec:?} {err}");
            let map = Fit::new(&spec).run(x.as_ref(), y.as_ref()).unwrap();
            let err = map.try_map_source(y.as_ref()).unwrap_err();
            assert_eq!(err, AlignError::DimensionMismatch { space: Space::Source, expected: 4, got: 3 });
            let err = map.try_map_target(x.as_ref()).unwrap_err();
            assert_eq!(err, AlignError::DimensionMismatch { space: Space::Target, expected: 3, got: 4 });
        }
        // Too few pairs names the need.
        let one = (x.as_ref().subrows(0, 1), y.as_ref().subrows(0, 1));
        let err = Fit::new(&MethodSpec::Affine { lambda: 0.0 }).run(one.0, one.1).unwrap_err();
        assert_eq!(err.to_string(), "affine needs at least 2 paired rows, got 1");
        let err = Fit::new(&MethodSpec::Cca { dim: Some(6), reg: Some(0.1) })
            .run(x.as_ref(), y.as_ref())
            .unwrap_err();
        assert_eq!(err.to_string(), "cca with dim = 6 needs at least 7 paired rows, got 6");
        // A singular problem suggests what to change.
        let zeros = Mat::<f64>::zeros(6, 4);
        let err = Fit::new(&MethodSpec::LeastSquares {}).run(zeros.as_ref(), y.as_ref()).unwrap_err();
        assert!(matches!(err, AlignError::Singular { .. }), "{err}");
        let (x4, y4) = (x.as_ref().subrows(0, 4), y.as_ref().subrows(0, 4));
        let err = Fit::new(&MethodSpec::Cca { dim: None, reg: Some(0.0) }).run(x4, y4).unwrap_err();
        assert!(err.to_string().contains("raise cca.reg"), "{err}");
        let err = Fit::new(&MethodSpec::Ridge { lambda: -1.0 }).run(x.as_ref(), y.as_ref()).unwrap_err();
        assert!(err.to_string().starts_with("invalid ridge.lambda"), "{err}");
    }

    #[test]
    fn overflowing_f32_products_are_reported() {
        let x = Mat::from_fn(4, 2, |i, j| if i == j { 3e20f32 } else { 1.0 });
        let y = Mat::from_fn(4, 2, |i, j| if i == j { 3e20f32 } else { 1.0 });
        for spec in [MethodSpec::Procrustes { scaled: false }, MethodSpec::Ridge { lambda: 1.0 }] {
            let err = Fit::new(&spec).run(x.as_ref(), y.as_ref()).unwrap_err();
            assert!(err.to_string().contains("overflow"), "{err}");
        }
        // The same rows are fine in f64.
        assert!(Fit::new(&MethodSpec::Procrustes { scaled: false }).run_f32(x.as_ref(), y.as_ref()).is_ok());
    }

    #[test]
    #[should_panic(expected = "source rows have 3 columns")]
    fn the_alignment_trait_panics_on_the_wrong_dimension() {
        let mut r = rng(65);
        let x = f32s(gaussian(&mut r, 6, 4).as_ref());
        let y = f32s(gaussian(&mut r, 6, 3).as_ref());
        let map = Fit::new(&MethodSpec::Ridge { lambda: 1.0 })
            .preprocess(&Preprocess::default())
            .run_f32(x.as_ref(), y.as_ref())
            .unwrap();
        map.map_source(y.as_ref());
    }

    /// Relative Frobenius error.
    fn rel_err(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> f64 {
        let diff = Mat::from_fn(a.nrows(), a.ncols(), |i, j| a[(i, j)] - b[(i, j)]);
        kernels::squared_norm(diff.as_ref()).sqrt() / kernels::squared_norm(b).sqrt()
    }

    /// A planted rotation `Q` (d × d), 5 anchors, and `k` operators given as rows: each space's
    /// operator rows are its own random items (nothing pairs items across spaces), with images
    /// under `x ↦ x F_k + a_k` (source) and `y ↦ y QᵀF_kQ + a_k Q` (target), which commute with `Q`.
    struct Planted {
        q: Mat<f64>,
        x: Mat<f32>,
        y: Mat<f32>,
        later: Mat<f64>,
        /// Per operator: source inputs, source images, target inputs, target images.
        rows: Vec<[Mat<f32>; 4]>,
    }

    fn planted(seed: u64, d: usize, k: usize) -> Planted {
        let mut r = rng(seed);
        let q = orthogonal(&mut r, d);
        let mut rows = Vec::new();
        for _ in 0..k {
            let f = gaussian(&mut r, d, d);
            let a = gaussian(&mut r, 1, d);
            let g = kernels::matmul(kernels::tmatmul(q.as_ref(), f.as_ref()).as_ref(), q.as_ref());
            let b = kernels::matmul(a.as_ref(), q.as_ref());
            let apply = |input: &Mat<f64>, m: &Mat<f64>, c: &Mat<f64>| {
                let mut out = kernels::matmul(input.as_ref(), m.as_ref());
                kernels::add_row(&mut out, c.row(0).iter().copied().collect::<Vec<_>>().as_slice());
                out
            };
            let source_in = gaussian(&mut r, 40, d);
            let target_in = gaussian(&mut r, 40, d);
            let source_out = apply(&source_in, &f, &a);
            let target_out = apply(&target_in, &g, &b);
            rows.push([
                f32s(source_in.as_ref()),
                f32s(source_out.as_ref()),
                f32s(target_in.as_ref()),
                f32s(target_out.as_ref()),
            ]);
        }
        let x = gaussian(&mut r, 5, d);
        let y = kernels::matmul(x.as_ref(), q.as_ref());
        let later = gaussian(&mut r, 20, d);
        Planted { q, x: f32s(x.as_ref()), y: f32s(y.as_ref()), later, rows }
    }

    fn operator<'a>(i: usize, input: &'a Mat<f32>, output: &'a Mat<f32>) -> OperatorRows<'a> {
        OperatorRows::new(format!("op{i}"), input.as_ref(), output.as_ref())
    }

    fn data_of(p: &Planted, seed: u64) -> FitData<'_> {
        let rows = operator;
        FitData {
            source_operators: p.rows.iter().enumerate().map(|(i, r)| rows(i, &r[0], &r[1])).collect(),
            target_operators: p.rows.iter().enumerate().map(|(i, r)| rows(i, &r[2], &r[3])).collect(),
            seed,
            ..FitData::default()
        }
    }

    fn functional(shuffle: bool) -> MethodSpec {
        MethodSpec::Functional {
            lambda: None,
            mu: None,
            orthogonal: false,
            solver: Solver::Auto,
            shuffle_operators: shuffle,
            operator_form: OperatorForm::Affine,
            min_r2: None,
            select: WeightSelection::Cv,
        }
    }

    /// Translation operators `x ↦ x + a_k` with their counterparts `y ↦ y + a_k Q`, plus one
    /// operator pair that is noise on both sides.
    fn translations(seed: u64, d: usize, k: usize) -> Planted {
        let mut r = rng(seed);
        let q = orthogonal(&mut r, d);
        let mut rows = Vec::new();
        for i in 0..=k {
            let source_in = gaussian(&mut r, 40, d);
            let target_in = gaussian(&mut r, 40, d);
            let (source_out, target_out) = if i < k {
                let a = gaussian(&mut r, 1, d);
                let b = kernels::matmul(a.as_ref(), q.as_ref());
                let shift = |input: &Mat<f64>, c: &Mat<f64>| {
                    let mut out = input.clone();
                    kernels::add_row(&mut out, c.row(0).iter().copied().collect::<Vec<_>>().as_slice());
                    out
                };
                (shift(&source_in, &a), shift(&target_in, &b))
            } else {
                (gaussian(&mut r, 40, d), gaussian(&mut r, 40, d))
            };
            rows.push([
                f32s(source_in.as_ref()),
                f32s(source_out.as_ref()),
                f32s(target_in.as_ref()),
                f32s(target_out.as_ref()),
            ]);
        }
        let x = gaussian(&mut r, 2, d);
        let y = kernels::matmul(x.as_ref(), q.as_ref());
        let later = gaussian(&mut r, 20, d);
        Planted { q, rows, x: f32s(x.as_ref()), y: f32s(y.as_ref()), later }
    }

    #[test]
    fn a_chain_of_fits_starts_each_solve_at_the_last_map_and_stops_at_its_refit_tolerance() {
        let p = planted(91, 12, 3);
        let spec = MethodSpec::Functional {
            lambda: Some(1.0),
            mu: Some(1e-3),
            orthogonal: false,
            solver: Solver::Cg,
            shuffle_operators: false,
            operator_form: OperatorForm::Affine,
            min_r2: None,
            select: WeightSelection::Cv,
        };
        let warm = WarmStart::with_refit_tolerance(1e-6);
        let chained = FitData { warm: Some(&warm), ..data_of(&p, 4) };
        let fit = |data: &FitData<'_>, n: usize| {
            Fit::new(&spec)
                .data(data)
                .run_f32(p.x.as_ref().subrows(0, n), p.y.as_ref().subrows(0, n))
                .unwrap()
        };
        // The first fit has no start: it solves to the default tolerance and keeps its map.
        let first = fit(&chained, 3);
        assert!(first.details["residual"] <= 1e-10, "{}", first.details["residual"]);
        assert!(warm.get(12, 12).is_some() && warm.get(12, 11).is_none());
        // The next starts there and stops at the chain's tolerance: fewer iterations than a cold
        // solve to 1e-10, the same map to about that tolerance.
        let (second, cold) = (fit(&chained, 5), fit(&data_of(&p, 4), 5));
        let residual = second.details["residual"];
        assert!(residual <= 1e-6, "{residual}");
        assert!(
            second.details["iterations"] < cold.details["iterations"],
            "{} vs {}",
            second.details["iterations"],
            cold.details["iterations"]
        );
        let error = rel_err(second.map.source.matrix.as_ref(), cold.map.source.matrix.as_ref());
        assert!(error < 1e-4, "{error:e}");
    }

    #[test]
    fn offset_operators_determine_the_map_and_min_r2_drops_the_one_that_is_noise() {
        let p = translations(74, 8, 8);
        let data = data_of(&p, 3);
        let spec = |form: OperatorForm, min_r2: Option<f64>| MethodSpec::Functional {
            lambda: Some(1.0),
            mu: Some(1e-9),
            orthogonal: false,
            solver: Solver::Auto,
            shuffle_operators: false,
            operator_form: form,
            min_r2,
            select: WeightSelection::Cv,
        };
        let error = |spec: &MethodSpec| {
            let map = Fit::new(spec)
                .data(&data)
                .run(to_precision(p.x.as_ref()).as_ref(), to_precision(p.y.as_ref()).as_ref())
                .unwrap();
            (rel_err(map.map.source.matrix.as_ref(), p.q.as_ref()), map.details)
        };
        // Two anchors in 8 dimensions; eight displacements carry the rest of the map. The noise
        // pair (held-out R² below 0 on both sides) is dropped by min-r2.
        let (clean, details) = error(&spec(OperatorForm::Offset, Some(0.5)));
        assert_eq!((details["operators"], details["operators-skipped"]), (8.0, 1.0));
        assert!(clean < 1e-3, "{clean}");
        let (noisy, details) = error(&spec(OperatorForm::Offset, None));
        assert_eq!(details["operators-skipped"], 0.0);
        assert!(noisy > 10.0 * clean, "the noise pair pulls the map away: {noisy} vs {clean}");
        // The affine form fits the same displacements with a ridge-fitted linear part on top: close,
        // not exact.
        let (affine, _) = error(&spec(OperatorForm::Affine, Some(0.5)));
        assert!(affine < 0.2, "{affine}");
        // min-r2 that no operator reaches leaves nothing to commute with.
        let none = Fit::<f64>::new(&spec(OperatorForm::Offset, Some(1.0)))
            .data(&data)
            .run(to_precision(p.x.as_ref()).as_ref(), to_precision(p.y.as_ref()).as_ref());
        assert!(matches!(none, Err(AlignError::MissingInput { .. })), "{none:?}");
    }

    #[test]
    fn the_operators_alone_determine_the_map_when_their_displacements_span_the_space() {
        // No pairs at all (the `operators` zero-anchor start): eight displacements in 8 dimensions
        // determine the rotation; the noise pair is dropped by min-r2.
        let spec = |min_r2: Option<f64>| MethodSpec::Functional {
            lambda: Some(1.0),
            mu: Some(1e-9),
            orthogonal: false,
            solver: Solver::Auto,
            shuffle_operators: false,
            operator_form: OperatorForm::Offset,
            min_r2,
            select: WeightSelection::Cv,
        };
        let none = Mat::<f64>::zeros(0, 8);
        let fit = |p: &Planted, spec: &MethodSpec| {
            Fit::new(spec).data(&data_of(p, 3)).run(none.as_ref(), none.as_ref())
        };
        let p = translations(74, 8, 8);
        let map = fit(&p, &spec(Some(0.5))).unwrap();
        let error = rel_err(map.map.source.matrix.as_ref(), p.q.as_ref());
        assert!(error < 1e-5, "{error:e}");
        // Four displacements pin half of it: the rest of the map is left at zero by the ridge term.
        let half = translations(74, 8, 4);
        let map = fit(&half, &spec(Some(0.5))).unwrap();
        let error = rel_err(map.map.source.matrix.as_ref(), half.q.as_ref());
        assert!((0.5..0.9).contains(&error), "{error}");
        // With no operators there is nothing to fit; centring needs pairs to be fitted on.
        let err = Fit::<f64>::new(&spec(None)).run(none.as_ref(), none.as_ref()).unwrap_err();
        assert!(matches!(err, AlignError::MissingInput { .. }), "{err:?}");
        let pre = Preprocess::default();
        let err =
            Fit::new(&spec(None)).preprocess(&pre).data(&data_of(&p, 3)).run(none.as_ref(), none.as_ref());
        assert!(err.unwrap_err().to_string().contains("there are none"));
        // Classic methods still need pairs.
        let err = Fit::<f64>::new(&MethodSpec::Ridge { lambda: 1.0 })
            .run(none.as_ref(), none.as_ref())
            .unwrap_err();
        assert!(matches!(err, AlignError::TooFewPairs { needed: 1, got: 0, .. }), "{err:?}");
    }

    #[test]
    fn the_label_free_criterion_chooses_weights_near_the_oracles() {
        // Operators that commute with the planted map but are fitted from noisy images, two noisy
        // anchors: too little weight on the operators leaves the map to two anchors, too much
        // trusts the noise. Unpaired rows: other items of each space, the target's an isometric
        // copy of the source's, permuted.
        let p = planted(75, 10, 4);
        let mut r = rng(76);
        let unpaired = gaussian(&mut r, 300, 10);
        let mut images = kernels::matmul(unpaired.as_ref(), p.q.as_ref());
        images = Mat::from_fn(300, 10, |i, j| images[((i * 7) % 300, j)]);
        let (source_rows, target_rows) = (f32s(unpaired.as_ref()), f32s(images.as_ref()));
        let noisy = |m: &Mat<f32>, seed: u64, amplitude: f32| {
            let noise = gaussian(&mut rng(seed), m.nrows(), m.ncols());
            Mat::from_fn(m.nrows(), m.ncols(), |i, j| m[(i, j)] + amplitude * noise[(i, j)] as f32)
        };
        let (x, y) = (noisy(&p.x.subrows(0, 2).to_owned(), 77, 0.3), p.y.subrows(0, 2).to_owned());
        // Noisy operator images, so that trusting the operators too much costs too.
        let p = Planted {
            rows: p
                .rows
                .iter()
                .enumerate()
                .map(|(k, [a, b, c, d])| {
                    [a.clone(), noisy(b, 80 + k as u64, 1.5), c.clone(), noisy(d, 90 + k as u64, 1.5)]
                })
                .collect(),
            ..p
        };
        let data = FitData {
            source_rows: Some(source_rows.as_ref()),
            target_rows: Some(target_rows.as_ref()),
            ..data_of(&p, 9)
        };
        let spec = |lambda: Option<f64>, select: WeightSelection| MethodSpec::Functional {
            lambda,
            mu: Some(1e-3),
            orthogonal: false,
            solver: Solver::Auto,
            shuffle_operators: false,
            operator_form: OperatorForm::Affine,
            min_r2: None,
            select,
        };
        let fit = |spec: &MethodSpec| {
            let map = Fit::new(spec)
                .data(&data)
                .run(to_precision(x.as_ref()).as_ref(), to_precision(y.as_ref()).as_ref())
                .unwrap();
            (rel_err(map.map.source.matrix.as_ref(), p.q.as_ref()), map.details)
        };
        let errors: Vec<(f64, f64)> = functional::LAMBDA_GRID
            .iter()
            .map(|&l| (l, fit(&spec(Some(l), WeightSelection::Cv)).0))
            .collect();
        let oracle = errors.iter().copied().min_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
        let (error, details) = fit(&spec(None, WeightSelection::Criterion));
        eprintln!("errors per lambda {errors:?}; criterion chose {} with error {error}", details["lambda"]);
        // The optimum is inside the grid (λ = 1); the criterion, a proxy read without labels,
        // lands within one grid step of it, far from both ends.
        assert!((details["lambda"].log10() - oracle.0.log10()).abs() <= 1.0 + 1e-9, "{errors:?}");
        assert!(error < 1.35 * oracle.1, "{error} vs the oracle's {}", oracle.1);
        let (first, last) = (errors[0].1, errors[errors.len() - 1].1);
        assert!(error < 0.85 * first.min(last), "better than either end: {error} vs {errors:?}");
        assert!(details["criterion"].is_finite() && details["criterion"] <= 1.0 + 1e-6, "{details:?}");
        assert!(!details.contains_key("cv-folds"));
        // Without unpaired rows the criterion cannot be read.
        let bare = FitData { source_rows: None, ..data_of(&p, 9) };
        let refused = Fit::<f64>::new(&spec(None, WeightSelection::Criterion))
            .data(&bare)
            .run(to_precision(x.as_ref()).as_ref(), to_precision(y.as_ref()).as_ref());
        assert!(matches!(refused, Err(AlignError::MissingInput { .. })), "{refused:?}");
    }

    #[test]
    fn functional_through_fit_data_recovers_a_planted_map_from_operator_rows() {
        let p = planted(71, 12, 3);
        let data = data_of(&p, 5);
        let map = Fit::new(&functional(false))
            .data(&data)
            .run(to_precision(p.x.as_ref()).as_ref(), to_precision(p.y.as_ref()).as_ref())
            .unwrap();
        let error = rel_err(map.map.source.matrix.as_ref(), p.q.as_ref());
        let ls = Fit::new(&MethodSpec::LeastSquares {})
            .run(to_precision(p.x.as_ref()).as_ref(), to_precision(p.y.as_ref()).as_ref())
            .unwrap();
        let ls_error = rel_err(ls.map.source.matrix.as_ref(), p.q.as_ref());
        eprintln!(
            "Fit functional, 12 → 12, 5 anchors: error {error:.2e}, least squares {ls_error:.3}; {:?}",
            map.details
        );
        assert!(error < 0.02, "{error}");
        assert!(ls_error > 0.5, "{ls_error}");
        let details = &map.details;
        assert!(functional::LAMBDA_GRID.contains(&details["lambda"]), "{details:?}");
        assert!(functional::MU_GRID.contains(&details["mu"]), "{details:?}");
        assert_eq!(
            (details["operators"], details["operators-skipped"], details["cv-folds"]),
            (3.0, 0.0, 5.0)
        );
        assert_eq!((details["exact"], details["iterations"], details["converged"]), (1.0, 0.0, 1.0));
        // Both weights were chosen, none given.
        assert!(!details.contains_key("lambda-given") && !details.contains_key("mu-given"), "{details:?}");
        // The boxed alignment is the same map, and reports the same details.
        let boxed = Fit::new(&functional(false)).data(&data).run_f32(p.x.as_ref(), p.y.as_ref()).unwrap();
        assert_eq!(boxed.details(), map.details);
        let mapped = boxed.map_source(f32s(p.later.as_ref()).as_ref());
        let expected = kernels::matmul(p.later.as_ref(), p.q.as_ref());
        let mapped = Mat::from_fn(20, 12, |i, j| f64::from(mapped[(i, j)]));
        assert!(rel_err(mapped.as_ref(), expected.as_ref()) < 0.02);
        // Deterministic for a seed.
        let again = Fit::new(&functional(false))
            .data(&data)
            .run(to_precision(p.x.as_ref()).as_ref(), to_precision(p.y.as_ref()).as_ref())
            .unwrap();
        assert_eq!(again, map);
        // In f32 too (tolerances scaled to its precision).
        let single = Fit::new(&functional(false)).data(&data).run(p.x.as_ref(), p.y.as_ref()).unwrap();
        let single = Mat::from_fn(12, 12, |i, j| f64::from(single.map.source.matrix[(i, j)]));
        let single_error = rel_err(single.as_ref(), p.q.as_ref());
        assert!(single_error < 0.02, "{single_error}");
        // Other methods report no details.
        let plain = Fit::new(&MethodSpec::LeastSquares {}).run_f32(p.x.as_ref(), p.y.as_ref()).unwrap();
        assert!(plain.details().is_empty());
    }

    /// Operator rows preprocessed ahead of the fits give the fit that preprocesses them itself,
    /// bit for bit; rows made by another preprocessing, or a fit in f32, are not read.
    #[test]
    fn operator_rows_preprocessed_ahead_are_read_only_by_their_preprocessing() {
        let p = planted(72, 10, 3);
        let data = data_of(&p, 5);
        let pre = Preprocess { pca: Some(8), ..Preprocess::default() };
        let pool = |m: &Mat<f32>| to_precision::<f64>(m.as_ref());
        let source = FittedPreprocess::fit(&pre, pool(&p.rows[0][0]).as_ref(), Space::Source).unwrap();
        let target = FittedPreprocess::fit(&pre, pool(&p.rows[0][2]).as_ref(), Space::Target).unwrap();
        let fit = |data: &FitData<'_>| {
            Fit::new(&functional(false))
                .preprocessed(source.clone(), target.clone())
                .data(data)
                .run_f32(p.x.as_ref(), p.y.as_ref())
                .unwrap()
        };
        let direct = fit(&data);
        // Each side's rows, preprocessed ahead; and the same shapes filled with noise.
        let ahead = |rows: &[Mat<f32>; 4], pre_s: &FittedPreprocess<f64>, pre_t: &FittedPreprocess<f64>| {
            let prep = |m: &Mat<f32>, pre: &FittedPreprocess<f64>, space| {
                preprocess_rows(m.as_ref(), pre, space, "rows").unwrap()
            };
            let (s, t) = (Space::Source, Space::Target);
            [
                prep(&rows[0], pre_s, s),
                prep(&rows[1], pre_s, s),
                prep(&rows[2], pre_t, t),
                prep(&rows[3], pre_t, t),
            ]
        };
        let prepared: Vec<[Mat<f64>; 4]> = p.rows.iter().map(|r| ahead(r, &source, &target)).collect();
        let mut r = rng(9);
        let noise: Vec<[Mat<f64>; 4]> =
            prepared.iter().map(|m| m.clone().map(|m| gaussian(&mut r, m.nrows(), m.ncols()))).collect();
        fn with<'a>(data: &FitData<'a>, rows: &'a [[Mat<f64>; 4]], by: (u64, u64)) -> FitData<'a> {
            let mut data = data.clone();
            for (k, m) in rows.iter().enumerate() {
                data.source_operators[k].preprocessed =
                    Some(Preprocessed { by: by.0, input: m[0].as_ref(), output: m[1].as_ref() });
                data.target_operators[k].preprocessed =
                    Some(Preprocessed { by: by.1, input: m[2].as_ref(), output: m[3].as_ref() });
            }
            data
        }
        let by = (source.fingerprint(), target.fingerprint());
        assert_ne!(by.0, by.1);
        assert_eq!(fit(&with(&data, &prepared, by)), direct);
        // Noise under the right fingerprints is read (the fit changes); under others it is not.
        assert_ne!(fit(&with(&data, &noise, by)), direct);
        assert_eq!(fit(&with(&data, &noise, (by.0 ^ 1, by.1 ^ 1))), direct);
        // A fit in f32 preprocesses the raw rows itself.
        let s32 = FittedPreprocess::<f32>::fit(&pre, p.rows[0][0].as_ref(), Space::Source).unwrap();
        let t32 = FittedPreprocess::<f32>::fit(&pre, p.rows[0][2].as_ref(), Space::Target).unwrap();
        let spec = functional(false);
        let in_f32 = |data: &FitData<'_>| {
            let fit = Fit::new(&spec).preprocessed(s32.clone(), t32.clone()).data(data);
            fit.run(p.x.as_ref(), p.y.as_ref()).unwrap()
        };
        assert_eq!(in_f32(&with(&data, &noise, by)), in_f32(&data));
    }

    #[test]
    fn shuffled_operators_lose_the_gain_through_fit_data() {
        let p = planted(72, 12, 3);
        let fit_error = |spec: &MethodSpec| {
            let map = Fit::new(spec)
                .preprocess(&Preprocess::default())
                .data(&data_of(&p, 9))
                .run(to_precision(p.x.as_ref()).as_ref(), to_precision(p.y.as_ref()).as_ref())
                .unwrap();
            let later = map.try_map_source(p.later.as_ref()).unwrap();
            let truth = map.try_map_target(kernels::matmul(p.later.as_ref(), p.q.as_ref()).as_ref()).unwrap();
            rel_err(later.as_ref(), truth.as_ref())
        };
        let (right, shuffled) = (fit_error(&functional(false)), fit_error(&functional(true)));
        let ls = fit_error(&MethodSpec::LeastSquares {});
        eprintln!(
            "preprocessed (unit, centre, unit): held-out error {right:.3}, shuffled operators {shuffled:.3}, \
             least squares {ls:.3}"
        );
        // Unit-normalisation bends the affine operators, and each space's operator rows are other
        // items, so the fitted actions commute only approximately; the gain over least squares is
        // still large, and it vanishes with the wrong correspondences.
        assert!(right < 0.5 * ls, "{right} vs {ls}");
        // The shuffled control keeps less than a quarter of the gain over least squares.
        assert!(shuffled - right > 0.75 * (ls - right), "{shuffled} vs {right} (least squares {ls})");
    }

    #[test]
    fn the_functional_family_reports_missing_or_bad_data() {
        let p = planted(73, 6, 2);
        let (x, y) = (p.x.as_ref(), p.y.as_ref());
        let none = Preprocess::none();
        let err = Fit::new(&functional(false)).run_f32(x, y).err().unwrap();
        assert!(matches!(err, AlignError::MissingInput { .. }), "{err}");
        assert!(
            err.to_string().starts_with("functional needs at least one pair of corresponding operators"),
            "{err}"
        );
        assert!(err.to_string().ends_with("but none were given"), "{err}");
        let laplacian = MethodSpec::Laplacian { k: 10, lambda: None, mu: None };
        let err = Fit::new(&laplacian).run_f32(x, y).err().unwrap();
        assert!(
            err.to_string().starts_with("laplacian with k = 10 needs at least 11 unpaired rows"),
            "{err}"
        );
        let few = FitData { source_rows: Some(x), target_rows: Some(y), ..FitData::default() };
        let err = Fit::new(&laplacian).preprocess(&none).data(&few).run_f32(x, y).err().unwrap();
        assert!(err.to_string().ends_with("but 5 source rows were given"), "{err}");
        let err = Fit::new(&laplacian)
            .run(to_precision::<f64>(x).as_ref(), to_precision::<f64>(y).as_ref())
            .map(|m| m.map)
            .unwrap_err();
        assert!(matches!(err, AlignError::MissingInput { .. }), "{err}");

        let data = data_of(&p, 1);
        let mut fewer = data_of(&p, 1);
        fewer.target_operators.pop();
        let err = Fit::new(&functional(false)).preprocess(&none).data(&fewer).run_f32(x, y).err().unwrap();
        assert!(err.to_string().contains("but 2 source and 1 target operators were given"), "{err}");
        let mut unpaired = data_of(&p, 1);
        unpaired.source_operators[1].output = p.rows[1][1].as_ref().subrows(0, 39);
        let err = Fit::new(&functional(false)).preprocess(&none).data(&unpaired).run_f32(x, y).err().unwrap();
        assert!(err.to_string().contains("source operator `op1`: inputs and images must pair up"), "{err}");
        let mut bad = p.rows[0][2].clone();
        bad[(3, 1)] = f32::NAN;
        let mut nan = data_of(&p, 1);
        nan.target_operators[0].input = bad.as_ref();
        let err = Fit::new(&functional(false)).preprocess(&none).data(&nan).run_f32(x, y).err().unwrap();
        assert!(
            err.to_string()
                .starts_with("invalid target operator `op0` inputs: target rows hold a non-finite"),
            "{err}"
        );
        let wide = Mat::<f32>::zeros(40, 7);
        let mut wrong = data_of(&p, 1);
        wrong.source_operators[0].input = wide.as_ref();
        wrong.source_operators[0].output = wide.as_ref();
        let err = Fit::new(&functional(false)).preprocess(&none).data(&wrong).run_f32(x, y).err().unwrap();
        assert!(
            err.to_string().contains("source rows have 7 columns, but the source space has dimension 6"),
            "{err}"
        );

        // An operator pair with fewer than 2 rows on a side is skipped; none left is an error.
        let mut short = data_of(&p, 1);
        short.target_operators[1].input = p.rows[1][2].as_ref().subrows(0, 1);
        short.target_operators[1].output = p.rows[1][3].as_ref().subrows(0, 1);
        let map = Fit::<f64>::new(&functional(false))
            .preprocess(&none)
            .data(&short)
            .run(to_precision(x).as_ref(), to_precision(y).as_ref())
            .unwrap();
        assert_eq!((map.details["operators"], map.details["operators-skipped"]), (1.0, 1.0));
        let err = Fit::new(&functional(true)).preprocess(&none).data(&short).run_f32(x, y).err().unwrap();
        assert_eq!(
            err.to_string(),
            "functional with shuffle-operators = true needs at least 2 usable operator pairs (to pair them \
             wrongly), but 1 is usable"
        );
        short.target_operators[0].input = p.rows[0][2].as_ref().subrows(0, 1);
        short.target_operators[0].output = p.rows[0][3].as_ref().subrows(0, 1);
        let err = Fit::new(&functional(false)).preprocess(&none).data(&short).run_f32(x, y).err().unwrap();
        assert!(
            err.to_string().ends_with("but all 2 operator pairs given have fewer than 2 rows on a side"),
            "{err}"
        );
        assert!(Fit::new(&functional(false)).preprocess(&none).data(&data).run_f32(x, y).is_ok());
    }

    #[test]
    fn relative_representations_of_rotated_spaces_are_identical() {
        let mut r = rng(74);
        let x = gaussian(&mut r, 30, 8);
        let q = orthogonal(&mut r, 8);
        let y = kernels::matmul(x.as_ref(), q.as_ref());
        let (x32, y32) = (f32s(x.as_ref()), f32s(y.as_ref()));
        let anchors = (x32.as_ref().subrows(0, 10), y32.as_ref().subrows(0, 10));
        let map = Fit::new(&MethodSpec::Relative {})
            .preprocess(&Preprocess::default())
            .run_f32(anchors.0, anchors.1)
            .unwrap();
        let (a, b) = (map.map_source(x32.as_ref()), map.map_target(y32.as_ref()));
        assert_eq!((a.nrows(), a.ncols()), (30, 10));
        let diff = (0..10)
            .flat_map(|j| (0..30).map(move |i| (i, j)))
            .map(|(i, j)| (a[(i, j)] - b[(i, j)]).abs())
            .fold(0.0f32, f32::max);
        assert!(diff < 1e-6, "{diff}");
        // Cosines: the anchors' similarity to themselves is 1, everything within [-1, 1].
        for i in 0..10 {
            assert!((a[(i, i)] - 1.0).abs() < 1e-6);
        }
        assert!((0..10).all(|j| (0..30).all(|i| a[(i, j)].abs() <= 1.0 + 1e-6)));
        // The fitted form: a trailing unit-norm step, the anchors as maps; refits keep one step.
        let fitted = Fit::new(&MethodSpec::Relative {})
            .preprocess(&Preprocess::default())
            .run(x.as_ref(), y.as_ref())
            .unwrap();
        assert!(matches!(fitted.source_preprocess.steps().last(), Some(Step::UnitNorm)));
        assert_eq!(fitted.source_preprocess.steps().len(), 3, "unit, centre, unit: no extra step");
        let none = Fit::new(&MethodSpec::Relative {}).run(x.as_ref(), y.as_ref()).unwrap();
        assert_eq!(none.source_preprocess.steps().len(), 1);
        let refit = Fit::new(&MethodSpec::Relative {})
            .preprocessed(none.source_preprocess.clone(), none.target_preprocess.clone())
            .run(x.as_ref(), y.as_ref())
            .unwrap();
        assert_eq!(refit.source_preprocess.steps().len(), 1);
        assert!(fitted.map.target.is_some() && fitted.output_dim() == 30);
    }

    #[test]
    fn laplacian_with_few_anchors_does_at_least_as_well_as_least_squares() {
        // Items with distinct variances per direction, seen in two rotated spaces.
        let mut r = rng(75);
        let (n, d) = (400, 10);
        let g = gaussian(&mut r, n, d);
        let x = Mat::from_fn(n, d, |i, j| g[(i, j)] * 1.35f64.powi(-(j as i32)));
        let q = orthogonal(&mut r, d);
        let y = kernels::matmul(x.as_ref(), q.as_ref());
        let (x32, y32) = (f32s(x.as_ref()), f32s(y.as_ref()));
        let anchors = 6;
        let data = FitData {
            source_rows: Some(x32.as_ref()),
            target_rows: Some(y32.as_ref()),
            seed: 3,
            ..FitData::default()
        };
        let held_out = |map: &dyn Alignment| {
            let a = map.map_source(x32.as_ref().subrows(anchors, n - anchors));
            let b = map.map_target(y32.as_ref().subrows(anchors, n - anchors));
            let to64 = |m: &Mat<f32>| Mat::from_fn(m.nrows(), m.ncols(), |i, j| f64::from(m[(i, j)]));
            rel_err(to64(&a).as_ref(), to64(&b).as_ref())
        };
        let (xa, ya) = (x32.as_ref().subrows(0, anchors), y32.as_ref().subrows(0, anchors));
        let pre = Preprocess::default();
        let laplacian = MethodSpec::Laplacian { k: 10, lambda: None, mu: None };
        let lap = Fit::new(&laplacian).preprocess(&pre).data(&data).run_f32(xa, ya).unwrap();
        let ls = Fit::new(&MethodSpec::LeastSquares {}).preprocess(&pre).run_f32(xa, ya).unwrap();
        let (lap_error, ls_error) = (held_out(&lap), held_out(&ls));
        eprintln!("laplacian, {anchors} anchors, 10 → 10: held-out error {lap_error:.3}, least squares {ls_error:.3}; {:?}", lap.details());
        assert!(lap_error <= ls_error, "{lap_error} vs {ls_error}");
        assert_eq!(lap.details()["operators"], 1.0);
    }

    #[test]
    fn f32_fits_run_in_f32() {
        let mut r = rng(66);
        let x = f32s(gaussian(&mut r, 50, 8).as_ref());
        let y = f32s(gaussian(&mut r, 50, 8).as_ref());
        for spec in all_methods() {
            let map: FittedMap<f32> =
                Fit::new(&spec).preprocess(&Preprocess::default()).run(x.as_ref(), y.as_ref()).unwrap();
            let boxed: Box<dyn Alignment> = Box::new(map);
            assert_eq!(boxed.map_source(x.as_ref()).nrows(), 50);
        }
    }
}

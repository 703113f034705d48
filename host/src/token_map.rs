//! Token states as the host handles them for stitching: each item's `tokens × width` tensor
//! read and stacked into rows, a linear map fitted between two models' token rows (affine, by
//! centring), and a model resumed on mapped states. The stitch sweep (`stitch`) and stitched
//! nodes (`extract`) both use these.

use crate::align::{Alignment, Fit, FitData, MethodSpec, OperatorRows, Preprocess};
use crate::edge_operators::{RepeatOperators, SideRows};
use crate::extract::CHUNK;
use crate::worker::Opened;
use crate::HostError;
use commute_sdk::{Tensor, Value};
use faer::Mat;

/// One item's token states: rows × width.
pub(crate) struct States {
    /// Token rows per item.
    pub(crate) rows: Vec<usize>,
    /// The states' width.
    pub(crate) width: usize,
    data: Vec<Vec<f32>>,
}

impl States {
    pub(crate) fn read(data_set: &str, values: Vec<Value>) -> Result<States, HostError> {
        let (mut rows, mut data, mut width) = (Vec::new(), Vec::new(), None);
        for (i, v) in values.into_iter().enumerate() {
            let bad = |what: String| {
                HostError::Usage(format!(
                    "data set `{data_set}`: item {i} is {what}, not token states (tokens × width)"
                ))
            };
            let Value::Tensor(Tensor { shape, data: d }) = v else { return Err(bad(v.kind().to_string())) };
            let [t, w] = shape[..] else { return Err(bad(format!("a tensor of shape {shape:?}"))) };
            if t == 0 {
                return Err(bad("a tensor with no tokens".to_owned()));
            }
            if *width.get_or_insert(w) != w {
                return Err(bad(format!("{t} × {w} where the items before are {} wide", width.unwrap_or(0))));
            }
            rows.push(t);
            data.push(d);
        }
        Ok(States { rows, width: width.unwrap_or(0), data })
    }

    /// The token rows of `items`, stacked.
    pub(crate) fn stacked(&self, items: &[usize]) -> Mat<f32> {
        let total: usize = items.iter().map(|&i| self.rows[i]).sum();
        let mut m = Mat::zeros(total, self.width);
        let mut r = 0;
        for &i in items {
            for t in 0..self.rows[i] {
                for j in 0..self.width {
                    m[(r, j)] = self.data[i][t * self.width + j];
                }
                r += 1;
            }
        }
        m
    }
}

/// Stacked rows cut back into one tensor per item (`rows[k]` rows each).
pub(crate) fn unstacked(m: &Mat<f32>, rows: &[usize]) -> Vec<Value> {
    let mut start = 0;
    rows.iter()
        .map(|&t| {
            let data = (start..start + t).flat_map(|r| (0..m.ncols()).map(move |j| m[(r, j)])).collect();
            start += t;
            Value::Tensor(Tensor { shape: vec![t, m.ncols()], data })
        })
        .collect()
}

/// The mean row.
pub(crate) fn mean_row(m: &Mat<f32>) -> Vec<f32> {
    let n = m.nrows().max(1) as f64;
    (0..m.ncols()).map(|j| ((0..m.nrows()).map(|i| f64::from(m[(i, j)])).sum::<f64>() / n) as f32).collect()
}

fn shift(m: &mut Mat<f32>, by: &[f32], sign: f32) {
    for i in 0..m.nrows() {
        for (j, b) in by.iter().enumerate() {
            m[(i, j)] += sign * b;
        }
    }
}

/// The operators a functional token map reads: one repeat's operator rows in A's space (the
/// `parent` side) and B's (`child`), and the seed of the fit's folds and shuffled control.
pub(crate) struct MapOperators<'a> {
    pub(crate) rows: &'a RepeatOperators,
    pub(crate) seed: u64,
}

/// A fitted token map: `x ↦ (x − μ_x) W + μ_y` with centring, `x W` without.
pub(crate) struct TokenMap {
    map: Box<dyn Alignment + Send + Sync>,
    means: Option<(Vec<f32>, Vec<f32>)>,
}

impl TokenMap {
    /// Fits `method` on the token pairs `x` → `y`, centred on their means when `center`; a
    /// `functional` method also reads `operators` (rows in the same two spaces, centred by the
    /// same means so that every row the fit sees is in one coordinate system).
    pub(crate) fn fit(
        method: &MethodSpec,
        x: &Mat<f32>,
        y: &Mat<f32>,
        center: bool,
        operators: Option<&MapOperators<'_>>,
    ) -> Result<TokenMap, String> {
        let (mut x, mut y) = (x.clone(), y.clone());
        let means = center.then(|| {
            let (mx, my) = (mean_row(&x), mean_row(&y));
            shift(&mut x, &mx, -1.0);
            shift(&mut y, &my, -1.0);
            (mx, my)
        });
        let none = Preprocess::none();
        let fit = Fit::new(method).preprocess(&none);
        let map = match operators {
            Some(ops) => {
                let moved = |m: &Mat<f32>, by: Option<&Vec<f32>>| {
                    let mut m = m.clone();
                    if let Some(by) = by {
                        shift(&mut m, by, -1.0);
                    }
                    m
                };
                let side = |sides: &[SideRows], by: Option<&Vec<f32>>| -> Vec<(Mat<f32>, Mat<f32>)> {
                    sides.iter().map(|r| (moved(&r.input, by), moved(&r.output, by))).collect()
                };
                let (mx, my) = (means.as_ref().map(|m| &m.0), means.as_ref().map(|m| &m.1));
                let (source, target) = (side(&ops.rows.parent, mx), side(&ops.rows.child, my));
                let graph = (moved(&ops.rows.graph_rows.0, mx), moved(&ops.rows.graph_rows.1, my));
                fn rows<'a>(sides: &'a [(Mat<f32>, Mat<f32>)], labels: &[String]) -> Vec<OperatorRows<'a>> {
                    sides
                        .iter()
                        .zip(labels)
                        .map(|((i, o), name)| OperatorRows::new(name.clone(), i.as_ref(), o.as_ref()))
                        .collect()
                }
                let data = FitData {
                    source_operators: rows(&source, &ops.rows.labels),
                    target_operators: rows(&target, &ops.rows.labels),
                    source_rows: Some(graph.0.as_ref()),
                    target_rows: Some(graph.1.as_ref()),
                    seed: ops.seed,
                    memo: None,
                    warm: None,
                };
                fit.data(&data).run_f32(x.as_ref(), y.as_ref())
            }
            None => fit.run_f32(x.as_ref(), y.as_ref()),
        }
        .map_err(|e| e.to_string())?;
        Ok(TokenMap { map: Box::new(map), means })
    }

    /// The fit's diagnostics (a functional map's chosen `lambda` and `mu`, …; see
    /// [`FittedMap::details`](crate::align::FittedMap)).
    pub(crate) fn details(&self) -> std::collections::BTreeMap<String, f64> {
        self.map.details()
    }

    pub(crate) fn apply(&self, x: &Mat<f32>) -> Mat<f32> {
        match &self.means {
            Some((mx, my)) => {
                let mut x = x.clone();
                shift(&mut x, mx, -1.0);
                let mut out = self.map.map_source(x.as_ref());
                shift(&mut out, my, 1.0);
                out
            }
            None => self.map.map_source(x.as_ref()),
        }
    }
}

/// B resumed on `states`, one output row per item.
pub(crate) fn resumed(resume: &mut Opened, states: Vec<Value>, what: &str) -> Result<Mat<f32>, HostError> {
    let mut out: Vec<Vec<f32>> = Vec::with_capacity(states.len());
    for (c, batch) in states.chunks(CHUNK).enumerate() {
        for (j, r) in resume.call(batch)?.into_iter().enumerate() {
            let item = c * CHUNK + j;
            match r {
                Ok(Value::Tensor(t)) => out.push(t.data),
                Ok(other) => {
                    return Err(HostError::Usage(format!(
                        "{what}: the resume gave {} for test item {item}",
                        other.kind()
                    )))
                }
                Err(e) => {
                    return Err(HostError::Usage(format!(
                        "{what}: the resume failed on test item {item}: {e}"
                    )))
                }
            }
        }
    }
    let dim = out.first().map_or(0, Vec::len);
    if let Some(bad) = out.iter().position(|v| v.len() != dim) {
        return Err(HostError::Usage(format!(
            "{what}: the resume gave {} values for test item {bad}, {dim} before",
            out[bad].len()
        )));
    }
    Ok(Mat::from_fn(out.len(), dim, |i, j| out[i][j]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(rows: usize, cols: usize, seed: u64) -> Mat<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Mat::from_fn(rows, cols, |_, _| rng.random_range(-1.0f32..1.0))
    }

    fn distance(a: &Mat<f32>, b: &Mat<f32>) -> f64 {
        (0..a.nrows())
            .flat_map(|i| (0..a.ncols()).map(move |j| (i, j)))
            .map(|(i, j)| f64::from(a[(i, j)] - b[(i, j)]).powi(2))
            .sum::<f64>()
            .sqrt()
    }

    #[test]
    fn centring_makes_every_method_an_affine_stitch_that_recovers_a_rotation_and_shift() {
        // A rotation of the first two coordinates and a shift: B's states from A's.
        let (c, s) = (0.6f32, 0.8f32);
        let shift = [3.0f32, -2.0, 0.5, 7.0];
        let target = |x: &Mat<f32>| {
            Mat::from_fn(x.nrows(), 4, |i, j| {
                let v = match j {
                    0 => c * x[(i, 0)] - s * x[(i, 1)],
                    1 => s * x[(i, 0)] + c * x[(i, 1)],
                    _ => x[(i, j)],
                };
                v + shift[j]
            })
        };
        let (x, held) = (random(40, 4, 1), random(10, 4, 2));
        for method in [MethodSpec::Procrustes { scaled: false }, MethodSpec::LeastSquares {}] {
            let map = TokenMap::fit(&method, &x, &target(&x), true, None).expect("a fit");
            let (got, want) = (map.apply(&held), target(&held));
            assert!(distance(&got, &want) < 1e-5, "{method:?}");
            // Without centring no linear map can add the shift.
            let plain = TokenMap::fit(&method, &x, &target(&x), false, None).expect("a fit");
            assert!(distance(&plain.apply(&held), &want) > 1.0, "{method:?}");
        }
    }

    /// Rotation `r` (d × d, orthogonal) from a QR of a random matrix.
    fn rotation(d: usize, seed: u64) -> Mat<f32> {
        let m = random(d, d, seed);
        let q = m.qr().compute_Q();
        Mat::from_fn(d, d, |i, j| q[(i, j)])
    }

    #[test]
    fn a_functional_token_map_reads_offset_operators_and_recovers_a_map_that_few_pairs_leave_open() {
        let d = 6;
        let r = rotation(d, 7);
        let shift = Mat::from_fn(1, d, |_, j| j as f32 - 2.0);
        let to_b = |x: &Mat<f32>| {
            let mut y = x * &r;
            for i in 0..y.nrows() {
                for j in 0..d {
                    y[(i, j)] += shift[(0, j)];
                }
            }
            y
        };
        // Three token pairs: far fewer than the 36 entries of the map.
        let (x, held) = (random(3, d, 1), random(20, d, 2));
        // Six operators, each a displacement: `c_k` in A, `c_k R` in B, fitted on other rows on
        // each side (as disjoint halves of the operators' items are).
        let offsets = random(d, d, 3);
        let (mut parent, mut child) = (Vec::new(), Vec::new());
        for k in 0..d {
            let moved =
                |m: &Mat<f32>, by: &Mat<f32>| Mat::from_fn(m.nrows(), d, |i, j| m[(i, j)] + by[(0, j)]);
            let c = Mat::from_fn(1, d, |_, j| offsets[(k, j)]);
            let (a, b) = (random(5, d, 10 + k as u64), to_b(&random(5, d, 20 + k as u64)));
            parent.push(SideRows { output: moved(&a, &c), input: a, preprocessed: None });
            child.push(SideRows { output: moved(&b, &(&c * &r)), input: b, preprocessed: None });
        }
        let rows = RepeatOperators {
            labels: (0..d).map(|k| format!("op{k}")).collect(),
            parent,
            child,
            test: Vec::new(),
            counts: Vec::new(),
            graph_rows: (random(8, d, 4), to_b(&random(8, d, 5))),
            order: None,
        };
        let ops = MapOperators { rows: &rows, seed: 1 };
        let method = |shuffled: bool| -> MethodSpec {
            serde_json::from_value(serde_json::json!({
                "kind": "functional", "lambda": 1.0, "mu": 0.0, "operator-form": "offset",
                "shuffle-operators": shuffled,
            }))
            .expect("a functional method")
        };
        let want = to_b(&held);
        let functional = TokenMap::fit(&method(false), &x, &to_b(&x), true, Some(&ops)).expect("a fit");
        assert!(distance(&functional.apply(&held), &want) < 1e-4);
        // The pairs alone leave the map open; operators paired wrongly mislead it.
        let ridge =
            TokenMap::fit(&MethodSpec::Ridge { lambda: 1e-6 }, &x, &to_b(&x), true, None).expect("a fit");
        assert!(distance(&ridge.apply(&held), &want) > 1.0);
        let shuffled = TokenMap::fit(&method(true), &x, &to_b(&x), true, Some(&ops)).expect("a fit");
        assert!(distance(&shuffled.apply(&held), &want) > 1.0);
    }

    #[test]
    fn stacked_token_rows_cut_back_into_their_items() {
        let values: Vec<Value> = [2usize, 1, 3]
            .iter()
            .enumerate()
            .map(|(k, &t)| {
                let data = (0..t * 2).map(|v| (10 * k + v) as f32).collect();
                Value::Tensor(Tensor { shape: vec![t, 2], data })
            })
            .collect();
        let states = States::read("states", values.clone()).expect("token states");
        let all = states.stacked(&[0, 1, 2]);
        assert_eq!(all.nrows(), 6);
        let back = unstacked(&all, &states.rows);
        assert_eq!(back, values);
        // Another order of items stacks their rows in that order.
        assert_eq!(states.stacked(&[2, 0])[(0, 0)], 20.0);
        // Items of different widths, or of no tokens, are not token states.
        let ragged = vec![values[0].clone(), Value::Tensor(Tensor { shape: vec![1, 3], data: vec![0.0; 3] })];
        assert!(States::read("states", ragged).is_err());
        let empty = vec![Value::Tensor(Tensor { shape: vec![0, 2], data: Vec::new() })];
        assert!(States::read("states", empty).is_err());
    }
}

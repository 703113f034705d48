//! Token states as the host handles them for stitching: each item's `tokens × width` tensor
//! read and stacked into rows, a linear map fitted between two models' token rows (affine, by
//! centring), and a model resumed on mapped states. The stitch sweep (`stitch`) and stitched
//! nodes (`extract`) both use these.

use crate::align::{Alignment, Fit, MethodSpec, Preprocess};
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

/// A fitted token map: `x ↦ (x − μ_x) W + μ_y` with centring, `x W` without.
pub(crate) struct TokenMap {
    map: Box<dyn Alignment + Send + Sync>,
    means: Option<(Vec<f32>, Vec<f32>)>,
}

impl TokenMap {
    pub(crate) fn fit(
        method: &MethodSpec,
        x: &Mat<f32>,
        y: &Mat<f32>,
        center: bool,
    ) -> Result<TokenMap, String> {
        let (mut x, mut y) = (x.clone(), y.clone());
        let means = center.then(|| {
            let (mx, my) = (mean_row(&x), mean_row(&y));
            shift(&mut x, &mx, -1.0);
            shift(&mut y, &my, -1.0);
            (mx, my)
        });
        let none = Preprocess::none();
        let map =
            Fit::new(method).preprocess(&none).run_f32(x.as_ref(), y.as_ref()).map_err(|e| e.to_string())?;
        Ok(TokenMap { map: Box::new(map), means })
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
            let map = TokenMap::fit(&method, &x, &target(&x), true).expect("a fit");
            let (got, want) = (map.apply(&held), target(&held));
            assert!(distance(&got, &want) < 1e-5, "{method:?}");
            // Without centring no linear map can add the shift.
            let plain = TokenMap::fit(&method, &x, &target(&x), false).expect("a fit");
            assert!(distance(&plain.apply(&held), &want) > 1.0, "{method:?}");
        }
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

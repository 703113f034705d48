//! The `[[stitches]]` tables: model A's token states, a map into model B's states, B resumed.

use super::{Fields, Parser, Value};
use crate::align::MethodSpec;
use crate::experiment::diagnostic::Diagnostic;
use crate::experiment::spans::StitchSpans;
use crate::experiment::spec::{Stitch, StitchOperators, StitchedEncoder};
use toml::de::DeValue;

impl Parser {
    pub(super) fn stitch(&mut self, index: usize, v: &Value<'_>) -> Option<Stitch> {
        let mut spans = StitchSpans { table: v.span(), ..StitchSpans::default() };
        let t = self.table(v, "stitches")?;
        let mut f = Fields::new(t, v.span(), format!("stitch {}", index + 1));
        let name = self.string(&mut f, "name");
        let source = self.required_string(&mut f, "source");
        let target = self.required_string(&mut f, "target");
        let reference = self.required_string(&mut f, "reference");
        let downstream = self.string(&mut f, "downstream");
        let resume = match f.get("resume") {
            Some(r) => {
                let t = self.table(r, "resume")?;
                let mut rf = Fields::new(t, r.span(), "`resume`");
                let call = self.call_keys(&mut rf, "encoder");
                rf.finish(self, &["plugin", "encoder", "params"]);
                call
            }
            None => {
                self.diags.push(
                    Diagnostic::new(f.span.clone(), format!("stitch {} needs `resume`", index + 1)).with_help(
                        "model B from the layer it resumes at, e.g. `resume = { plugin = \"text\", encoder = \"minilm-resume\", params = { layer = 3 } }`",
                    ),
                );
                None
            }
        };
        let methods = match f.get("methods") {
            Some(m) => match m.get_ref() {
                DeValue::Array(items) if !items.is_empty() => {
                    items.iter().filter_map(|item| self.stitch_method(item, &mut spans)).collect()
                }
                _ => {
                    self.wrong_type(
                        m,
                        "methods",
                        "a non-empty array of method tables, e.g. [{ kind = \"ridge\" }]",
                    );
                    Vec::new()
                }
            },
            None => {
                self.diags.push(
                    Diagnostic::new(f.span.clone(), format!("stitch {} needs `methods`", index + 1))
                        .with_help("add `methods = [{ kind = \"procrustes\" }, { kind = \"ridge\" }]`"),
                );
                Vec::new()
            }
        };
        let center = self.boolean(&mut f, "center").unwrap_or(true);
        let operators = self.stitch_operators(&mut f, &mut spans);
        f.finish(
            self,
            &[
                "name",
                "source",
                "target",
                "resume",
                "reference",
                "methods",
                "center",
                "downstream",
                "operators",
                "operator-nodes",
            ],
        );
        let ((source, source_span), (target, target_span)) = (source?, target?);
        let (reference, reference_span) = reference?;
        spans.source = source_span;
        spans.target = target_span;
        spans.reference = reference_span;
        spans.downstream = downstream.as_ref().map(|d| d.1.clone()).unwrap_or_default();
        Some(Stitch {
            name: name.map(|n| n.0).unwrap_or_else(|| format!("{source} → {target}")),
            source,
            target,
            resume: resume?,
            reference,
            methods,
            center,
            downstream: downstream.map(|d| d.0),
            operators,
            spans,
        })
    }

    /// `operators = […]` (as an edge's) with `operator-nodes = { source, target }`: both or
    /// neither.
    fn stitch_operators(
        &mut self,
        f: &mut Fields<'_, '_>,
        spans: &mut StitchSpans,
    ) -> Option<StitchOperators> {
        let pairs = f.get("operators").map(|v| {
            spans.operators = v.span();
            self.operator_pairs(v)
        });
        let nodes = match f.get("operator-nodes") {
            Some(v) => {
                let t = self.table(v, "operator-nodes")?;
                let mut nf = Fields::new(t, v.span(), "`operator-nodes`");
                let source = self.required_string(&mut nf, "source");
                let target = self.required_string(&mut nf, "target");
                nf.finish(self, &["source", "target"]);
                let ((source, s), (target, t)) = (source?, target?);
                spans.operator_nodes = [s, t];
                Some((source, target, v.span()))
            }
            None => None,
        };
        match (pairs, nodes) {
            (Some(pairs), Some((source, target, _))) => Some(StitchOperators { source, target, pairs }),
            (None, None) => None,
            (Some(_), None) => {
                self.diags.push(
                    Diagnostic::new(spans.operators.clone(), "`operators` needs `operator-nodes`").with_help(
                        "name the nodes that embed the operators' items in A's and B's spaces at the stitch's layers, e.g. `operator-nodes = { source = \"paraphrase-words-2\", target = \"minilm-words-4\" }`",
                    ),
                );
                None
            }
            (None, Some((_, _, span))) => {
                self.diags.push(
                    Diagnostic::new(span, "`operator-nodes` without `operators`").with_help(
                        "list the operators of the nodes' data set, e.g. `operators = [\"plural\"]`",
                    ),
                );
                None
            }
        }
    }

    /// A node computed by a stitch: `stitch`, `method` and `anchors` (`data` and the unknown keys
    /// are the caller's).
    pub(super) fn stitched_node(&mut self, f: &mut Fields<'_, '_>) -> Option<StitchedEncoder> {
        let stitch = self.string(f, "stitch");
        let anchors = self.integer(f, "anchors", 1, i64::from(u32::MAX));
        if anchors.is_none() && !f.table.contains_key("anchors") {
            self.diags.push(
                Diagnostic::new(f.span.clone(), "a stitched node needs `anchors`")
                    .with_help("the number of items whose token pairs fit its map, e.g. `anchors = 100`"),
            );
        }
        let method = match f.get("method") {
            Some(m) => {
                let mut spans = StitchSpans::default();
                Some(self.stitch_method(m, &mut spans)?)
            }
            None => None,
        };
        let (stitch, span) = stitch?;
        Some(StitchedEncoder { stitch, method, anchors: usize::try_from(anchors?).ok()?, span })
    }

    /// One stitch method: a method of an edge's form that maps into the target's own space, since
    /// its output is fed to model B.
    fn stitch_method(&mut self, item: &Value<'_>, spans: &mut StitchSpans) -> Option<MethodSpec> {
        if let DeValue::Table(t) = item.get_ref() {
            if let Some((key, _)) = ["refine", "self-learning"].iter().find_map(|k| t.get_key_value(*k)) {
                let message = format!("`{}`: a stitch has no refinement or self-learning", key.get_ref());
                self.error(key.span(), message);
                return None;
            }
        }
        let spec = self.method(item)?.spec;
        if !Stitch::can_stitch(&spec) {
            let why = match &spec {
                MethodSpec::Cca { .. } | MethodSpec::Vecmap { .. } | MethodSpec::Relative {} => {
                    "maps both sides into a shared space, not into B's states"
                }
                _ => "needs unpaired rows, which a stitch does not give",
            };
            self.diags.push(
                Diagnostic::new(item.span(), format!("method `{}` cannot stitch: it {why}", spec.kind()))
                    .with_help(
                    "a stitch feeds the mapped states to B: use least-squares, ridge, procrustes, affine or functional",
                ),
            );
            return None;
        }
        spans.methods.push(item.span());
        Some(spec)
    }
}

//! The checks of `[[stitches]]`: two data sets of token states on the same items, an encoder
//! that resumes from such states, and nodes on those items to compare with.

use super::{DataFacts, Validator};
use crate::experiment::diagnostic::suggest;
use crate::experiment::spec::{Node, StitchedEncoder};
use commute_sdk::{FunctionKind, ValueKind};

impl Validator<'_> {
    pub(super) fn stitches(&mut self) {
        let exp = self.exp;
        for (i, stitch) in exp.stitches.iter().enumerate() {
            let what = format!("stitch {}", i + 1);
            let mut roots = Vec::new();
            for (key, name, span) in [
                ("source", &stitch.source, &stitch.spans.source),
                ("target", &stitch.target, &stitch.spans.target),
            ] {
                let Some(facts) = self.named_data(name, span) else { continue };
                if let Some(kind) = facts.kind.filter(|k| !ValueKind::Tensor.accepts(*k)) {
                    self.error(
                        span.clone(),
                        format!("{what}: `{key}` data set `{name}` holds {kind}, not token states"),
                        Some("render token states from the items, e.g. `render = { plugin = \"text\", function = \"minilm-states\", params = { layer = 3 } }`".to_owned()),
                    );
                }
                roots.push((exp.root_of(name).to_owned(), span.clone(), key));
            }
            let node_names: Vec<&str> = exp.nodes.iter().map(|n| n.name.as_str()).collect();
            let nodes = [
                ("reference", Some(&stitch.reference), &stitch.spans.reference),
                ("downstream", stitch.downstream.as_ref(), &stitch.spans.downstream),
            ];
            for (key, name, span) in nodes {
                let Some(name) = name else { continue };
                match exp.node(name) {
                    Some(node) => roots.push((exp.root_of(&node.data).to_owned(), span.clone(), key)),
                    None => {
                        let help = suggest(name, node_names.iter().copied())
                            .map(|s| format!("did you mean `{s}`?"))
                            .unwrap_or_else(|| format!("declared nodes: {}", node_names.join(", ")));
                        self.error(span.clone(), format!("{what}: no node named `{name}`"), Some(help));
                    }
                }
            }
            if let Some((first, _, first_key)) = roots.first().cloned() {
                for (root, span, key) in &roots[1..] {
                    if *root != first {
                        self.error(
                            span.clone(),
                            format!("{what}: `{key}` is on the items of `{root}`, `{first_key}` on those of `{first}`"),
                            Some("a stitch pairs the same items on every side: derive each from one data set".to_owned()),
                        );
                    }
                }
            }
            if let Some(spec) = self.function(&stitch.resume, FunctionKind::Encoder, "resume") {
                if let Some(input) = spec.input.filter(|input| !input.accepts(ValueKind::Tensor)) {
                    self.error(
                        stitch.resume.spans.function.clone(),
                        format!(
                            "{what}: `{}` of plugin `{}` reads {input}, but a stitch feeds it token states (tensors)",
                            stitch.resume.function, stitch.resume.plugin
                        ),
                        Some("name the encoder that runs model B from a layer on, e.g. `minilm-resume`".to_owned()),
                    );
                }
            }
            self.stitch_operators(i);
            if exp.anchors.iter().all(|&a| a == 0) {
                self.error(
                    exp.spans.anchors.clone(),
                    format!("{what}: a stitch's map is fitted on the anchors' token pairs, and every anchor count is 0"),
                    Some("add an anchor count above 0".to_owned()),
                );
            }
        }
    }
    /// A stitch's operators: nodes that exist, on data sets with those operators, and enough of
    /// them for its functional methods.
    fn stitch_operators(&mut self, i: usize) {
        let exp = self.exp;
        let stitch = &exp.stitches[i];
        let what = format!("stitch {}", i + 1);
        let pairs = stitch.operators.as_ref().map_or(0, |o| o.pairs.len());
        for (method, span) in stitch.methods.iter().zip(&stitch.spans.methods) {
            let needs = if pairs == 0 && method.kind() == "functional" {
                format!("{what} (declare `operators` and `operator-nodes`)")
            } else {
                what.clone()
            };
            self.operators_enough(method, pairs, span, &needs);
        }
        let Some(ops) = &stitch.operators else { return };
        let node_names: Vec<&str> = exp.nodes.iter().map(|n| n.name.as_str()).collect();
        let mut data = Vec::new();
        for ((side, name), span) in
            [("source", &ops.source), ("target", &ops.target)].into_iter().zip(&stitch.spans.operator_nodes)
        {
            match exp.node(name) {
                Some(node) => data.push((side, node.data.as_str())),
                None => {
                    let help = suggest(name, node_names.iter().copied())
                        .map(|s| format!("did you mean `{s}`?"))
                        .unwrap_or_else(|| format!("declared nodes: {}", node_names.join(", ")));
                    self.error(span.clone(), format!("{what}: no node named `{name}`"), Some(help));
                }
            }
        }
        if let [a, b] = data[..] {
            self.operators_declared(&ops.pairs, &stitch.spans.operators, [a, b]);
        }
    }

    /// A node computed by a stitch: the stitch exists, and the node is on its items.
    pub(super) fn stitched_node(&mut self, node: &Node, encoder: &StitchedEncoder, data: Option<DataFacts>) {
        let exp = self.exp;
        let Some(stitch) = exp.stitches.iter().find(|s| s.name == encoder.stitch) else {
            let names: Vec<&str> = exp.stitches.iter().map(|s| s.name.as_str()).collect();
            let help = suggest(&encoder.stitch, names.iter().copied())
                .map(|s| format!("did you mean `{s}`?"))
                .unwrap_or_else(|| format!("declared stitches: {}", names.join(", ")));
            let message = format!("node `{}`: no stitch named `{}`", node.name, encoder.stitch);
            self.error(encoder.span.clone(), message, Some(help));
            return;
        };
        let root = exp.root_of(&stitch.source);
        if node.data != root {
            self.error(
                node.spans.data.clone(),
                format!("node `{}` is stitched by `{}`, whose items are those of `{root}`", node.name, stitch.name),
                Some(format!("write `data = \"{root}\"`: the node renders its items to model A's states as the stitch does")),
            );
        }
        let method = encoder.method.as_ref().or(stitch.methods.first());
        if let Some(method) = method.filter(|m| m.kind() == "functional") {
            self.error(
                encoder.span.clone(),
                format!(
                    "node `{}`: a stitched node's map is fitted on token pairs alone, and `{}` reads operators",
                    node.name,
                    method.kind()
                ),
                Some("give the node `method = { kind = \"ridge\" }` (or another classic method); the stitch's own sweep evaluates its functional maps".to_owned()),
            );
        }
        if let Some(len) = data.and_then(|d| d.len).filter(|&len| encoder.anchors >= len) {
            self.error(
                encoder.span.clone(),
                format!(
                    "node `{}`: {} anchors leave none of the {len} items to embed",
                    node.name, encoder.anchors
                ),
                Some("the anchor items are left out of the node; fit on fewer".to_owned()),
            );
        }
    }
}

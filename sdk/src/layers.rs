//! Which layers a layered encoder reads: its `layer` alone, or the list `layers` read in one
//! forward pass. A node's layer sweep (`layers = "all"`) sweeps `layer`; where the encoder also
//! takes `layers`, the host reads every layer of the sweep in one pass with it, and caches each
//! part as that layer's node. The rule that makes that safe: each part must be, bit for bit, what
//! `layer` alone gives.

use crate::prelude::*;

/// The layers read, in order: `layers`, or `layer` alone. With `layers`, `layer` must be left at
/// its default, the model's last layer `last`; every layer must be within `0..=last`.
pub fn layers_read(layer: usize, layers: Option<&[usize]>, last: usize) -> Result<Vec<usize>> {
    ensure!(layer <= last, "layer must be within 0..={last}, got {layer}");
    let Some(layers) = layers else { return Ok(vec![layer]) };
    ensure!(!layers.is_empty(), "layers must name at least one layer");
    ensure!(layer == last, "give `layer` or `layers`, not both (layer = {layer}, layers = {layers:?})");
    if let Some(bad) = layers.iter().find(|&&l| l > last) {
        bail!("layers must be within 0..={last}, got {bad}");
    }
    Ok(layers.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_alone_or_a_list_and_what_is_refused() {
        assert_eq!(layers_read(2, None, 6).unwrap(), [2]);
        assert_eq!(layers_read(6, Some(&[6, 0, 3]), 6).unwrap(), [6, 0, 3]);
        let err = |layer, layers: Option<&[usize]>| layers_read(layer, layers, 6).unwrap_err().to_string();
        assert!(err(7, None).contains("within 0..=6, got 7"));
        assert!(err(6, Some(&[])).contains("at least one"));
        assert!(err(2, Some(&[1])).contains("not both"));
        assert!(err(6, Some(&[1, 9])).contains("got 9"));
    }
}

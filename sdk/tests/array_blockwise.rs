//! `array::blockwise` with index notation, against values computed element by element.

mod common;

use common::{Rng, client};
use ndarray::{ArrayD, Axis, IxDyn};
use tessera::array::{self, blockwise};
use tessera::{Chunk, DType, Error, Result};

fn random(shape: &[usize], seed: u64) -> ArrayD<f64> {
    let mut rng = Rng(seed);
    ArrayD::from_shape_fn(IxDyn(shape), |_| rng.next())
}

fn f64_blocks(blocks: &[&Chunk]) -> Result<Vec<ArrayD<f64>>> {
    blocks.iter().map(|b| b.cast(DType::F64).into_typed::<f64>()).collect()
}

#[test]
fn three_channels_chunked_differently_give_their_ratio() -> Result<()> {
    let (s, r, b) = (random(&[30, 41], 1), random(&[30, 41], 2), random(&[30, 41], 3));
    let signal = array::from_ndarray(s.clone(), &[10, 20])?;
    // Other chunkings along both axes: rechunked to the signal's before pairing.
    let reference = array::from_ndarray(r.clone(), &[7, 41])?;
    let background = array::from_ndarray(b.clone().mapv(|v| v * 0.5), &[30, 1])?;
    let args = [(&signal, "yx"), (&reference, "yx"), (&background, "yx")];
    let ratio = blockwise("ratio", "yx", &args, DType::F64, |blocks| {
        let [s, r, b] = <[ArrayD<f64>; 3]>::try_from(f64_blocks(blocks)?).expect("three blocks");
        Ok(Chunk::from_array((&s - &b) / (&r - &b)))
    })?;
    assert_eq!(ratio.chunks(), signal.chunks());
    let got = ratio.compute_with(&client()?)?.into_typed::<f64>()?;
    let expected = ArrayD::from_shape_fn(IxDyn(&[30, 41]), |ix| {
        let (s, r, b) = (s[&ix], r[&ix], 0.5 * b[&ix]);
        (s - b) / (r - b)
    });
    assert_eq!(got, expected);
    Ok(())
}

#[test]
fn one_2d_mask_applies_to_every_plane_of_a_3d_stack() -> Result<()> {
    let data = random(&[5, 12, 9], 4);
    let keep = random(&[12, 9], 5).mapv(|v| v > 0.3);
    let stack = array::from_ndarray(data.clone(), &[2, 5, 4])?;
    let mask = array::from_ndarray(keep.clone(), &[5, 4])?;
    let masked = blockwise("apply-mask", "tyx", &[(&stack, "tyx"), (&mask, "yx")], DType::F64, |blocks| {
        let stack = blocks[0].typed::<f64>()?;
        let mask = blocks[1].typed::<bool>()?;
        let mut out = stack.clone();
        for mut plane in out.axis_iter_mut(Axis(0)) {
            plane.zip_mut_with(mask, |v, &keep| *v = if keep { *v } else { 0.0 });
        }
        Ok(Chunk::from_array(out))
    })?;
    let got = masked.compute_with(&client()?)?.into_typed::<f64>()?;
    let expected = ArrayD::from_shape_fn(IxDyn(&[5, 12, 9]), |ix| if keep[[ix[1], ix[2]]] { data[&ix] } else { 0.0 });
    assert_eq!(got, expected);
    Ok(())
}

#[test]
fn letters_pair_transposed_axes() -> Result<()> {
    let (a, b) = (random(&[6, 10], 6), random(&[10, 6], 7));
    let x = array::from_ndarray(a.clone(), &[4, 3])?;
    let y = array::from_ndarray(b.clone(), &[5, 2])?;
    // out[i, j] = x[i, j] + y[j, i]
    let sum = blockwise("add-t", "ij", &[(&x, "ij"), (&y, "ji")], DType::F64, |blocks| {
        let (x, y) = (blocks[0].typed::<f64>()?, blocks[1].typed::<f64>()?);
        Ok(Chunk::from_array(x + &y.t()))
    })?;
    let got = sum.compute_with(&client()?)?.into_typed::<f64>()?;
    assert_eq!(got, &a + &b.t());
    Ok(())
}

/// The message of an `Invalid` error, or a panic naming what came instead.
fn invalid(result: Result<array::Array>) -> String {
    match result {
        Err(Error::Invalid { message, .. }) => message,
        other => panic!("expected an invalid-argument error, got {other:?}"),
    }
}

#[test]
fn bad_indices_are_named_when_the_graph_is_built() -> Result<()> {
    let x = array::zeros(&[4, 6], &[2, 3], DType::F32)?;
    let y = array::zeros(&[5], &[5], DType::F32)?;
    let id = |blocks: &[&Chunk]| Ok(blocks[0].clone());
    let message = invalid(blockwise("f", "ij", &[(&x, "i")], DType::F32, id));
    assert!(message.contains("has 1 letters but array") && message.contains("2 axes"), "{message}");
    let message = invalid(blockwise("f", "i", &[(&x, "ij")], DType::F32, id));
    assert!(message.contains("axis 'j'") && message.contains("not in the output index"), "{message}");
    let message = invalid(blockwise("f", "ij", &[(&x, "ij"), (&y, "j")], DType::F32, id));
    assert!(message.contains("axis 'j' has length 6") && message.contains("but 5"), "{message}");
    let message = invalid(blockwise("f", "ijk", &[(&x, "ij")], DType::F32, id));
    assert!(message.contains("output axis 'k'"), "{message}");
    let message = invalid(blockwise("f", "ii", &[(&x, "ij")], DType::F32, id));
    assert!(message.contains("repeats axis 'i'"), "{message}");
    Ok(())
}

//! From 8-bit images to normalised float tensors, batch by batch.

use burn::tensor::{Device, Int, Tensor, TensorData};

use super::ImageSet;

/// Per-channel mean and standard deviation of the training distribution (MNIST for grey images,
/// CIFAR-10 for colour), so inputs reach the network centred.
pub fn stats(channels: usize) -> (&'static [f32], &'static [f32]) {
    if channels == 1 { (&[0.1307], &[0.3081]) } else { (&[0.4914, 0.4822, 0.4465], &[0.2470, 0.2435, 0.2616]) }
}

/// Normalised floats of the images at `indices`, [n, c, h, w] row-major.
pub fn floats(set: &ImageSet, indices: &[usize]) -> Vec<f32> {
    let (mean, std) = stats(set.channels);
    let plane = set.height * set.width;
    let mut out = Vec::with_capacity(indices.len() * set.image_len());
    for &i in indices {
        for (ch, chunk) in set.image(i).chunks_exact(plane).enumerate() {
            let (m, s) = (mean[ch % mean.len()], std[ch % std.len()]);
            out.extend(chunk.iter().map(|&p| (p as f32 / 255.0 - m) / s));
        }
    }
    out
}

/// The images at `indices` as a tensor.
///
/// # Shapes
/// - output: [indices.len(), channels, height, width]
pub fn images(set: &ImageSet, indices: &[usize], device: &Device) -> Tensor<4> {
    let shape = [indices.len(), set.channels, set.height, set.width];
    Tensor::from_data(TensorData::new(floats(set, indices), shape), device)
}

/// Labels as an integer tensor: [labels.len()].
pub fn labels(labels: &[u8], device: &Device) -> Tensor<1, Int> {
    let v: Vec<i64> = labels.iter().map(|&y| y as i64).collect();
    Tensor::from_data(TensorData::new(v, [labels.len()]), device)
}

//! The little linear algebra the data-level detectors need, in f64 on row-major matrices: centring,
//! covariance, the top eigenvectors of a symmetric matrix (subspace iteration), 2-means and the
//! silhouette. Small (≤ 128 dimensions), so plain loops are fast enough and identical everywhere.

use crate::lab::rng::LabRng;

/// Rows of `x` ([n, d]) minus their mean; returns the centred rows and the mean.
pub fn centre(x: &[f64], n: usize, d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut mean = vec![0.0; d];
    for row in x.chunks_exact(d) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v;
        }
    }
    for m in &mut mean {
        *m /= n.max(1) as f64;
    }
    let mut out = x.to_vec();
    for row in out.chunks_exact_mut(d) {
        for (v, m) in row.iter_mut().zip(&mean) {
            *v -= m;
        }
    }
    (out, mean)
}

/// Covariance (scatter / n) of centred rows: [d, d].
pub fn covariance(centred: &[f64], n: usize, d: usize) -> Vec<f64> {
    let mut c = vec![0.0; d * d];
    for row in centred.chunks_exact(d) {
        for i in 0..d {
            let ri = row[i];
            if ri == 0.0 {
                continue; // ReLU features are sparse
            }
            for j in i..d {
                c[i * d + j] += ri * row[j];
            }
        }
    }
    for i in 0..d {
        for j in i..d {
            let v = c[i * d + j] / n.max(1) as f64;
            c[i * d + j] = v;
            c[j * d + i] = v;
        }
    }
    c
}

/// The `k` leading eigenvectors (rows of the result, [k, d], unit length) and eigenvalues of the
/// symmetric positive semi-definite `m` ([d, d]), by subspace iteration with Gram–Schmidt: a
/// fixed, deterministic start and a fixed number of rounds, so every platform gets the same basis.
pub fn top_eigen(m: &[f64], d: usize, k: usize) -> (Vec<f64>, Vec<f64>) {
    let k = k.min(d);
    // A deterministic start that is not orthogonal to any eigenvector in practice.
    let mut q: Vec<f64> = (0..k * d)
        .map(|i| ((i as f64 * 0.618_033_988_75).fract() - 0.5) + if i % (d + 1) == 0 { 1.0 } else { 0.0 })
        .collect();
    orthonormalise(&mut q, k, d);
    for _ in 0..300 {
        let mut next = vec![0.0; k * d];
        for r in 0..k {
            for i in 0..d {
                next[r * d + i] = (0..d).map(|j| m[i * d + j] * q[r * d + j]).sum();
            }
        }
        orthonormalise(&mut next, k, d);
        q = next;
    }
    let values = (0..k)
        .map(|r| {
            let v = &q[r * d..(r + 1) * d];
            (0..d).map(|i| v[i] * (0..d).map(|j| m[i * d + j] * v[j]).sum::<f64>()).sum()
        })
        .collect();
    // Fix each vector's sign (largest component positive) so projections do not flip between runs.
    for r in 0..k {
        let v = &mut q[r * d..(r + 1) * d];
        let big = v.iter().copied().fold(0.0f64, |a, b| if b.abs() > a.abs() { b } else { a });
        if big < 0.0 {
            v.iter_mut().for_each(|x| *x = -*x);
        }
    }
    (q, values)
}

/// Gram–Schmidt on the `k` rows of `q` ([k, d]); a row that vanishes is replaced by a unit axis.
fn orthonormalise(q: &mut [f64], k: usize, d: usize) {
    for r in 0..k {
        for p in 0..r {
            let dot: f64 = (0..d).map(|i| q[r * d + i] * q[p * d + i]).sum();
            for i in 0..d {
                q[r * d + i] -= dot * q[p * d + i];
            }
        }
        let norm = (0..d).map(|i| q[r * d + i] * q[r * d + i]).sum::<f64>().sqrt();
        if norm > 1e-12 {
            q[r * d..(r + 1) * d].iter_mut().for_each(|x| *x /= norm);
        } else {
            q[r * d..(r + 1) * d].iter_mut().enumerate().for_each(|(i, x)| *x = if i == r % d { 1.0 } else { 0.0 });
        }
    }
}

/// Projects rows of `x` ([n, d]) onto the rows of `basis` ([k, d]): [n, k].
pub fn project(x: &[f64], d: usize, basis: &[f64], k: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(x.len() / d.max(1) * k);
    for row in x.chunks_exact(d) {
        for b in basis.chunks_exact(d).take(k) {
            out.push(row.iter().zip(b).map(|(a, b)| a * b).sum());
        }
    }
    out
}

fn dist2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// 2-means (Lloyd) on rows of `x` ([n, d]) with k-means++ starts, best of `restarts` by inertia.
/// Returns the cluster (0 or 1) of each row.
pub fn two_means(x: &[f64], n: usize, d: usize, restarts: usize, rng: &mut LabRng) -> Vec<u8> {
    let mut best: Option<(f64, Vec<u8>)> = None;
    if n < 2 {
        return vec![0; n];
    }
    for _ in 0..restarts.max(1) {
        let first = rng.below(n);
        let c0 = x[first * d..(first + 1) * d].to_vec();
        // k-means++: the second centre drawn proportionally to squared distance from the first.
        let w: Vec<f64> = x.chunks_exact(d).map(|r| dist2(r, &c0)).collect();
        let total: f64 = w.iter().sum();
        let second = if total > 0.0 {
            let mut t = rng.below(1 << 30) as f64 / (1u64 << 30) as f64 * total;
            let mut pick = n - 1;
            for (i, wi) in w.iter().enumerate() {
                if t < *wi {
                    pick = i;
                    break;
                }
                t -= wi;
            }
            pick
        } else {
            (first + 1) % n
        };
        let mut centres = [c0, x[second * d..(second + 1) * d].to_vec()];
        let mut assign = vec![0u8; n];
        for _ in 0..100 {
            let mut changed = false;
            for (i, r) in x.chunks_exact(d).enumerate() {
                let a = u8::from(dist2(r, &centres[1]) < dist2(r, &centres[0]));
                changed |= a != assign[i];
                assign[i] = a;
            }
            for (c, centre) in centres.iter_mut().enumerate() {
                let members: Vec<&[f64]> =
                    x.chunks_exact(d).zip(&assign).filter(|&(_, &a)| a as usize == c).map(|(r, _)| r).collect();
                if members.is_empty() {
                    continue;
                }
                for (j, v) in centre.iter_mut().enumerate() {
                    *v = members.iter().map(|r| r[j]).sum::<f64>() / members.len() as f64;
                }
            }
            if !changed {
                break;
            }
        }
        let inertia: f64 = x.chunks_exact(d).zip(&assign).map(|(r, &a)| dist2(r, &centres[a as usize])).sum();
        if best.as_ref().is_none_or(|(b, _)| inertia < *b) {
            best = Some((inertia, assign));
        }
    }
    best.map(|(_, a)| a).unwrap_or_else(|| vec![0; n])
}

/// Mean silhouette of a 2-cluster assignment over rows of `x` ([n, d]); 0 when a cluster is empty.
pub fn silhouette(x: &[f64], d: usize, assign: &[u8]) -> f64 {
    let n = assign.len();
    let sizes = [assign.iter().filter(|&&a| a == 0).count(), assign.iter().filter(|&&a| a == 1).count()];
    if sizes[0] == 0 || sizes[1] == 0 {
        return 0.0;
    }
    let mut total = 0.0;
    for i in 0..n {
        let mut sums = [0.0, 0.0];
        for j in 0..n {
            if i != j {
                sums[assign[j] as usize] += dist2(&x[i * d..(i + 1) * d], &x[j * d..(j + 1) * d]).sqrt();
            }
        }
        let own = assign[i] as usize;
        if sizes[own] == 1 {
            continue; // a singleton's silhouette is 0 by convention
        }
        let a = sums[own] / (sizes[own] - 1) as f64;
        let b = sums[1 - own] / sizes[1 - own] as f64;
        let m = a.max(b);
        if m > 0.0 {
            total += (b - a) / m;
        }
    }
    total / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::rng::Stream;

    #[test]
    fn eigenvectors_of_a_diagonal_matrix() {
        let m = [4.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 9.0];
        let (v, l) = top_eigen(&m, 3, 2);
        assert!((l[0] - 9.0).abs() < 1e-9 && (l[1] - 4.0).abs() < 1e-9, "{l:?}");
        assert!((v[2].abs() - 1.0).abs() < 1e-9 && (v[3].abs() - 1.0).abs() < 1e-9, "{v:?}");
    }

    #[test]
    fn two_means_separates_two_blobs() {
        let mut x = Vec::new();
        for i in 0..20 {
            let off = if i < 15 { 0.0 } else { 10.0 };
            x.extend([off + (i % 3) as f64 * 0.1, off - (i % 2) as f64 * 0.1]);
        }
        let mut rng = LabRng::new(0, Stream::Detect);
        let a = two_means(&x, 20, 2, 3, &mut rng);
        assert!(a[..15].iter().all(|&c| c == a[0]) && a[15..].iter().all(|&c| c != a[0]));
        assert!(silhouette(&x, 2, &a) > 0.9);
    }
}

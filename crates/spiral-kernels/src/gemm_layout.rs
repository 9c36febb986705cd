//! How a batched product of row-major tensors, either operand possibly a transposed view, maps
//! onto one column-major BLAS call, cuBLAS's `cublasGemmStridedBatchedEx` (used by
//! `cuda_cublas`).
//!
//! BLAS computes `C' = op(A') op(B')` on column-major matrices, each operand either as stored
//! (`N`) or transposed (`T`). A row-major `[m, n]` matrix is, read column-major, its own
//! transpose `[n, m]`; so the row-major `C = A B` is the column-major `C^T = B^T A^T`, which is
//! the BLAS call with `A' = B` and `B' = A`, neither copied:
//!
//! - a row-major operand read column-major is already the transpose that call wants (`N`);
//! - a transposed view (unit stride between rows) is a column-major matrix, so BLAS transposes
//!   it (`T`).
//!
//! Batch dimensions must flatten into one stride, as in every tensor burn makes contiguous and
//! every transposed view of one. Anything else is refused (`None`), and the product runs on
//! another kernel. The mapping is checked on the CPU against a plain product, through a loop that
//! follows the BLAS definition (tests below).

/// One operand of a batched matrix product as BLAS reads it, in elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Operand {
    /// Matrices in the batch.
    pub batch: usize,
    /// Elements from one matrix to the next (0 for a batch of one, or a broadcast one).
    pub batch_stride: usize,
    /// Rows and columns of each matrix, as the product sees it.
    pub rows: usize,
    pub cols: usize,
    /// Stored column by column: a transposed view of a row-major matrix.
    pub transposed: bool,
    /// Elements from one stored row (or column, when `transposed`) to the next.
    pub ld: usize,
}

impl Operand {
    /// The operand of dimensions `shape` and element strides `strides` (same length, at least
    /// 2), if BLAS can read it in place: one of its last two dimensions has unit stride, the
    /// other a stride that does not overlap it, and its batch dimensions flatten into one.
    pub(crate) fn from_strided(shape: &[usize], strides: &[usize]) -> Option<Self> {
        let d = shape.len();
        if d < 2 || strides.len() != d {
            return None;
        }
        let (rows, cols) = (shape[d - 2], shape[d - 1]);
        let (row_stride, col_stride) = (strides[d - 2], strides[d - 1]);
        // A dimension of size 1 has no stride to speak of: it fits either layout.
        let (transposed, ld) = if cols == 1 || col_stride == 1 {
            (false, if rows == 1 { cols } else { row_stride })
        } else if rows == 1 || row_stride == 1 {
            (true, if cols == 1 { rows } else { col_stride })
        } else {
            return None;
        };
        let leading = if transposed { rows } else { cols };
        if ld < leading.max(1) {
            return None;
        }
        let (batch, batch_stride) = flatten_batch(&shape[..d - 2], &strides[..d - 2])?;
        Some(Self { batch, batch_stride, rows, cols, transposed, ld })
    }
}

/// The number of matrices and the stride between them, if the batch dimensions are one strided
/// run: each dimension's stride is the next inner one's times its size (dimensions of size 1
/// skipped). A broadcast batch (every stride 0) is one.
fn flatten_batch(shape: &[usize], strides: &[usize]) -> Option<(usize, usize)> {
    let mut dims = shape.iter().zip(strides).rev().filter(|&(&size, _)| size != 1);
    let Some((&inner_size, &inner_stride)) = dims.next() else {
        return Some((1, 0));
    };
    let (mut count, mut expected) = (inner_size, inner_stride * inner_size);
    for (&size, &stride) in dims {
        if stride != expected {
            return None;
        }
        count *= size;
        expected = stride * size;
    }
    Some((count, inner_stride))
}

/// The arguments of the column-major call `C' = op(A') op(B')` that computes the row-major
/// product `C = A B` into a contiguous `C`: `A'` is the product's right operand, `B'` its left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GemmArgs {
    /// `op(A')` is `A'` transposed (`T`), else `A'` as stored (`N`).
    pub transa: bool,
    pub transb: bool,
    /// `C'` is `m x n`, and the shared dimension is `k`.
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub lda: usize,
    pub ldb: usize,
    pub ldc: usize,
    pub stride_a: usize,
    pub stride_b: usize,
    pub stride_c: usize,
    pub batch: usize,
}

/// The call computing `left @ right`, if their shapes agree and no dimension is 0.
pub(crate) fn gemm_args(left: Operand, right: Operand) -> Option<GemmArgs> {
    let (m, k, n) = (left.rows, left.cols, right.cols);
    if right.rows != k || left.batch != right.batch || m == 0 || n == 0 || k == 0 {
        return None;
    }
    Some(GemmArgs {
        transa: right.transposed,
        transb: left.transposed,
        m: n,
        n: m,
        k,
        lda: right.ld,
        ldb: left.ld,
        ldc: n,
        stride_a: right.batch_stride,
        stride_b: left.batch_stride,
        stride_c: m * n,
        batch: left.batch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A strided tensor over its own memory: logical element `index` is at `Σ index_i stride_i`.
    struct Strided {
        shape: Vec<usize>,
        strides: Vec<usize>,
        memory: Vec<f32>,
    }

    impl Strided {
        /// A contiguous tensor of `shape`, padded to rows of `ld` elements, with distinct
        /// values; `transpose` then swaps its last two dimensions as a view.
        fn new(shape: &[usize], ld: usize, transpose: bool) -> Self {
            let d = shape.len();
            let mut stored = shape.to_vec();
            if transpose {
                stored.swap(d - 2, d - 1);
            }
            let mut strides = vec![0; d];
            let mut step = 1;
            for i in (0..d).rev() {
                strides[i] = step;
                step *= if i == d - 1 { ld.max(stored[i]) } else { stored[i] };
            }
            if transpose {
                strides.swap(d - 2, d - 1);
            }
            let memory = (0..step).map(|i| ((i * 7919) % 23) as f32 - 11.0).collect();
            Self { shape: shape.to_vec(), strides, memory }
        }

        fn at(&self, index: &[usize]) -> f32 {
            self.memory[index.iter().zip(&self.strides).map(|(i, s)| i * s).sum::<usize>()]
        }
    }

    /// `C = A B` over the batch, element by element from the logical indices.
    fn plain_product(a: &Strided, b: &Strided) -> Vec<f32> {
        let d = a.shape.len();
        let batches: Vec<Vec<usize>> = a.shape[..d - 2].iter().fold(vec![vec![]], |acc, &size| {
            acc.into_iter()
                .flat_map(|prefix| (0..size).map(move |i| [prefix.clone(), vec![i]].concat()))
                .collect()
        });
        let (m, k, n) = (a.shape[d - 2], a.shape[d - 1], b.shape[d - 1]);
        let mut c = Vec::new();
        for batch in &batches {
            for i in 0..m {
                for j in 0..n {
                    let index = |x: usize, y: usize| [batch.clone(), vec![x, y]].concat();
                    c.push((0..k).map(|l| a.at(&index(i, l)) * b.at(&index(l, j))).sum());
                }
            }
        }
        c
    }

    /// The BLAS definition of the strided batched call, column-major, into a fresh `C'`.
    fn blas_call(args: &GemmArgs, a: &[f32], b: &[f32]) -> Vec<f32> {
        let mut c = vec![f32::NAN; args.batch * args.stride_c];
        for p in 0..args.batch {
            let op_a = |i: usize, l: usize| {
                let (row, col) = if args.transa { (l, i) } else { (i, l) };
                a[p * args.stride_a + row + col * args.lda]
            };
            let op_b = |l: usize, j: usize| {
                let (row, col) = if args.transb { (j, l) } else { (l, j) };
                b[p * args.stride_b + row + col * args.ldb]
            };
            for i in 0..args.m {
                for j in 0..args.n {
                    c[p * args.stride_c + i + j * args.ldc] =
                        (0..args.k).map(|l| op_a(i, l) * op_b(l, j)).sum();
                }
            }
        }
        c
    }

    fn check(a: &Strided, b: &Strided) {
        let left = Operand::from_strided(&a.shape, &a.strides).expect("left operand readable");
        let right = Operand::from_strided(&b.shape, &b.strides).expect("right operand readable");
        let args = gemm_args(left, right).expect("shapes agree");
        // Leading dimensions as BLAS requires them of the stored matrices.
        assert!(args.lda >= if args.transa { args.k } else { args.m });
        assert!(args.ldb >= if args.transb { args.n } else { args.k });
        assert_eq!(
            blas_call(&args, &b.memory, &a.memory),
            plain_product(a, b),
            "{:?} x {:?}",
            a.strides,
            b.strides
        );
    }

    #[test]
    fn every_layout_pair_computes_the_product() {
        for (batch, m, k, n) in [(vec![], 5, 3, 4), (vec![3], 6, 4, 2), (vec![2, 3], 3, 5, 7)] {
            let dims = |r: usize, c: usize| [batch.clone(), vec![r, c]].concat();
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                // Plain, and with padded rows (a slice of a wider tensor).
                for pad in [0, 3] {
                    let ld_a = if ta { m } else { k } + pad;
                    let ld_b = if tb { k } else { n } + pad;
                    check(
                        &Strided::new(&dims(m, k), ld_a, ta),
                        &Strided::new(&dims(k, n), ld_b, tb),
                    );
                }
            }
        }
    }

    #[test]
    fn single_rows_and_columns_fit_either_layout() {
        for (m, k, n) in [(1, 4, 3), (4, 1, 3), (4, 3, 1), (1, 1, 1)] {
            for (ta, tb) in [(false, false), (true, true), (true, false)] {
                let (ld_a, ld_b) = (if ta { m } else { k }, if tb { k } else { n });
                check(&Strided::new(&[2, m, k], ld_a, ta), &Strided::new(&[2, k, n], ld_b, tb));
            }
        }
    }

    #[test]
    fn a_broadcast_batch_is_read_with_stride_zero() {
        let a = Strided::new(&[3, 4, 5], 5, false);
        let mut b = Strided::new(&[1, 5, 2], 2, false);
        b.shape[0] = 3;
        b.strides[0] = 0;
        check(&a, &b);
    }

    #[test]
    fn layouts_blas_cannot_read_are_refused() {
        // Neither of the last two dimensions has unit stride (every other column).
        assert_eq!(Operand::from_strided(&[4, 3], &[6, 2]), None);
        // Rows that overlap.
        assert_eq!(Operand::from_strided(&[4, 3], &[2, 1]), None);
        // Batch dimensions that do not flatten: a slice of the outer one.
        assert_eq!(Operand::from_strided(&[2, 3, 4, 5], &[120, 20, 5, 1]), None);
        // Shapes that disagree, and empty products.
        let op = |rows, cols| Operand {
            batch: 1,
            batch_stride: 0,
            rows,
            cols,
            transposed: false,
            ld: 8,
        };
        assert_eq!(gemm_args(op(4, 3), op(2, 5)), None);
        assert_eq!(gemm_args(op(4, 0), op(0, 5)), None);
        assert!(gemm_args(op(4, 3), op(3, 5)).is_some());
    }
}

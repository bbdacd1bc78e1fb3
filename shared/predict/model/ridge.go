package model

import (
	"errors"
	"fmt"
	"slices"

	"gonum.org/v1/gonum/mat"
)

// ridgeLambda is ltv's L2 penalty, relative to the rows: ‖y − Xw‖² + λ·n·‖w‖² on
// standardised features, so its strength does not change with the workspace's size.
const ridgeLambda = 1e-2

// fitRidge fits y ≈ bias + x·w by ridge regression on the n×p row-major matrix x, whose
// columns are standardised on these rows (mean 0), so the bias is the mean of y and the
// weights solve (XᵀX + λ·n·I) w = Xᵀ(y − ȳ), by Cholesky.
func fitRidge(x []float64, p int, y []float64, lambda float64) ([]float64, float64, error) {
	n := len(y)
	if n == 0 {
		return nil, 0, errors.New("no training rows")
	}
	X := mat.NewDense(n, p, x[:n*p])
	bias := 0.0
	for _, v := range y {
		bias += v
	}
	bias /= float64(n)
	yc := make([]float64, n)
	for i, v := range y {
		yc[i] = v - bias
	}
	var a mat.SymDense
	a.SymOuterK(1, X.T())
	for j := range p {
		a.SetSym(j, j, a.At(j, j)+lambda*float64(n))
	}
	var rhs mat.VecDense
	rhs.MulVec(X.T(), mat.NewVecDense(n, yc))
	var ch mat.Cholesky
	if !ch.Factorize(&a) {
		return nil, 0, errors.New("ridge regression: the system is not positive definite")
	}
	var w mat.VecDense
	if err := ch.SolveVecTo(&w, &rhs); err != nil {
		return nil, 0, fmt.Errorf("ridge regression: %w", err)
	}
	return slices.Clone(w.RawVector().Data), bias, nil
}

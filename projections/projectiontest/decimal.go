package projectiontest

import "github.com/shopspring/decimal"

func decimalTwo() decimal.Decimal { return decimal.NewFromInt(2) }

package billing

import (
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/churnsignal/churnsignal/shared/account"
)

// MRRResult is a subscription's monthly recurring revenue with its parts.
type MRRResult struct {
	// Amount is in minor units of the subscription currency, rounded once, half away from zero,
	// after the discount in force at the time asked for.
	Amount int64
	// Full is the amount before any discount.
	Full int64
	// Discount is the subscription's discount with the MRR while it is in force (nil: none).
	Discount *account.Discount
	// Note says what is left out (metered or tiered items), empty when the amount is exact.
	Note  string
	Items []account.Item
	// Seats is the largest quantity of a licensed item: seat-priced plans carry the seat count
	// as quantity, and a flat platform fee alongside has quantity 1.
	Seats int64
}

// perMonth is the factor that turns an amount per interval into an amount per month.
func perMonth(interval string, count int64) *big.Rat {
	if count <= 0 {
		count = 1
	}
	switch interval {
	case "year":
		return big.NewRat(1, 12*count)
	case "week":
		return big.NewRat(52, 12*count)
	case "day":
		return big.NewRat(365, 12*count)
	}
	return big.NewRat(1, count)
}

// MRR computes a subscription's MRR exactly: for every item, the per-unit price times the
// billed quantity, normalized to one month from its interval (year /12, week ×52/12,
// day ×365/12, each divided by interval_count), summed as exact fractions; then the
// subscription's discount (percent_off, or amount_off in the same currency per billing
// interval) while it is in force at time at; then rounded once. Metered items have no fixed
// amount and tiered prices are not in webhook payloads: both are left out and named in Note.
func MRR(s *stripe.Subscription, at int64) MRRResult {
	var res MRRResult
	total := new(big.Rat)
	var skipped []string
	interval, count := "month", int64(1)
	if s.Items != nil {
		for _, it := range s.Items.Data {
			if it == nil {
				continue
			}
			p := itemPrice(it)
			if p == nil {
				continue
			}
			if p.Recurring == nil {
				continue
			}
			interval, count = string(p.Recurring.Interval), p.Recurring.IntervalCount
			qty := it.Quantity
			if p.Recurring.UsageType == stripe.PriceRecurringUsageTypeMetered {
				skipped = append(skipped, "metered price "+p.ID)
				continue
			}
			if qty > res.Seats {
				res.Seats = qty
			}
			if p.BillingScheme == stripe.PriceBillingSchemeTiered {
				skipped = append(skipped, "tiered price "+p.ID)
				res.Items = append(res.Items, account.Item{Price: p.ID, Quantity: qty, Interval: interval, IntervalCount: count})
				continue
			}
			billed := qty
			if tq := p.TransformQuantity; tq != nil && tq.DivideBy > 0 {
				billed = qty / tq.DivideBy
				if tq.Round == stripe.PriceTransformQuantityRoundUp && qty%tq.DivideBy != 0 {
					billed++
				}
			}
			unit := unitAmount(p)
			amount := new(big.Rat).Mul(unit, new(big.Rat).SetInt64(billed))
			amount.Mul(amount, perMonth(interval, count))
			total.Add(total, amount)
			res.Items = append(res.Items, account.Item{Price: p.ID, Quantity: qty, UnitAmount: p.UnitAmount,
				Interval: interval, IntervalCount: count, MRR: roundRat(amount)})
		}
	}
	res.Full = roundRat(total)
	discounted := new(big.Rat).Set(total)
	if d := s.Discount; d != nil && d.Coupon != nil {
		c := d.Coupon
		applies := true
		switch {
		case c.PercentOff > 0:
			pct, _ := new(big.Rat).SetString(strconv.FormatFloat(c.PercentOff, 'f', -1, 64))
			keep := new(big.Rat).Sub(big.NewRat(1, 1), new(big.Rat).Quo(pct, big.NewRat(100, 1)))
			discounted.Mul(discounted, keep)
		case c.AmountOff > 0 && strings.EqualFold(string(c.Currency), Currency(s)):
			off := new(big.Rat).Mul(new(big.Rat).SetInt64(c.AmountOff), perMonth(interval, count))
			discounted.Sub(discounted, off)
		default:
			applies = false
		}
		if discounted.Sign() < 0 {
			discounted.SetInt64(0)
		}
		if applies {
			res.Discount = &account.Discount{Coupon: c.ID, PercentOff: c.PercentOff, AmountOff: c.AmountOff,
				Start: unix(d.Start), End: unix(d.End), MRR: roundRat(discounted)}
			if res.Discount.InForce(time.Unix(at, 0)) {
				total = discounted
			}
		}
	}
	if s.Items != nil && s.Items.HasMore {
		skipped = append(skipped, "items beyond the first page of the webhook payload")
	}
	res.Amount = roundRat(total)
	if len(skipped) > 0 {
		// Bounded like every stored string: twenty metered items with Stripe's 255-byte ids
		// would otherwise write kilobytes of note per subscription.
		res.Note = account.Clip("not included: "+strings.Join(skipped, ", "), account.MaxString)
	}
	res.Items = account.TopItems(res.Items, account.MaxItems)
	return res
}

// itemPrice is an item's price, or for payloads of API versions before prices (items with a
// plan only) the same terms read from its plan.
func itemPrice(it *stripe.SubscriptionItem) *stripe.Price {
	if it.Price != nil || it.Plan == nil {
		return it.Price
	}
	pl := it.Plan
	p := &stripe.Price{ID: pl.ID, Currency: pl.Currency, UnitAmount: pl.Amount, UnitAmountDecimal: pl.AmountDecimal,
		BillingScheme: stripe.PriceBillingScheme(pl.BillingScheme),
		Recurring: &stripe.PriceRecurring{Interval: stripe.PriceRecurringInterval(pl.Interval), IntervalCount: pl.IntervalCount,
			UsageType: stripe.PriceRecurringUsageType(pl.UsageType)}}
	if tu := pl.TransformUsage; tu != nil {
		p.TransformQuantity = &stripe.PriceTransformQuantity{DivideBy: tu.DivideBy, Round: stripe.PriceTransformQuantityRound(tu.Round)}
	}
	return p
}

// Currency is the subscription's currency: its own field, or (in payloads of older API
// versions, which lack it) the currency of its first priced item.
func Currency(s *stripe.Subscription) string {
	if s.Currency != "" {
		return string(s.Currency)
	}
	if s.Items != nil {
		for _, it := range s.Items.Data {
			if it == nil {
				continue
			}
			if p := itemPrice(it); p != nil && p.Currency != "" {
				return string(p.Currency)
			}
		}
	}
	return ""
}

// unitAmount is the price per unit in minor units, exact: unit_amount_decimal when it carries
// fractions of a cent, else unit_amount.
func unitAmount(p *stripe.Price) *big.Rat {
	if p.UnitAmountDecimal != 0 && float64(p.UnitAmount) != p.UnitAmountDecimal {
		if r, ok := new(big.Rat).SetString(strconv.FormatFloat(p.UnitAmountDecimal, 'f', -1, 64)); ok {
			return r
		}
	}
	return new(big.Rat).SetInt64(p.UnitAmount)
}

// roundRat rounds half away from zero to an integer.
func roundRat(r *big.Rat) int64 {
	num, den := new(big.Int).Set(r.Num()), r.Denom()
	neg := num.Sign() < 0
	num.Abs(num)
	q, m := new(big.Int).QuoRem(num, den, new(big.Int))
	if new(big.Int).Mul(m, big.NewInt(2)).Cmp(den) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	if neg {
		q.Neg(q)
	}
	return q.Int64()
}

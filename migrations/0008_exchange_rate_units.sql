-- Exchange-rate indicators (issue 12): a unit may be a currency pair PRICE/BASE, such as
-- CNY/USD (yuan per US dollar); reports convert currencies through such indicators. The
-- service checks both codes against ISO 4217; the database only keeps the shape.
ALTER TABLE indicators DROP CONSTRAINT indicators_unit_check;
ALTER TABLE indicators ADD CONSTRAINT indicators_unit_check
    CHECK (unit ~ '^(1|%|[A-Z][A-Z0-9]{0,15}|[A-Z]{3}/[A-Z]{3})$');

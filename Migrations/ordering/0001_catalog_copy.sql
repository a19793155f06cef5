-- Ordering's own copy of Catalog's public product data (name, price, discontinued), fed by Catalog's
-- product feed, so that checkout prices orders even while Catalog is down.
CREATE TABLE catalog_products (
    sku              text    PRIMARY KEY,
    name             text    NOT NULL,
    price_amount     bigint  NOT NULL,
    price_currency   text    NOT NULL,
    discontinued     boolean NOT NULL DEFAULT false,
    -- The feed position of the last event applied to this row: an older event delivered again is skipped.
    feed_transaction bigint  NOT NULL,
    feed_position    bigint  NOT NULL
);

-- How far each consumed feed has been applied, written in the same transaction as what it applied.
CREATE TABLE feed_checkpoints (
    feed       text        PRIMARY KEY,
    position   text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

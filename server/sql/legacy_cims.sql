-- The CIM Builder's `cims` table from before cimhub (seed §8): one row per CIM,
-- its state in JSONB columns with snake_case names. cimhub never writes it; the
-- migration importer reads it, and its tests create it from this file.
--
-- Not a numbered migration: the hub does not need it. No foreign keys, so a
-- test can load any row; JSONB columns and the title may be null, as rows
-- written by older app versions can be.

create table if not exists public.cims (
    id uuid primary key default gen_random_uuid(),
    deal_id uuid not null,
    project_id uuid not null,
    user_id uuid not null,
    title text default '',
    workflow_state jsonb default '{}'::jsonb,
    slides jsonb default '[]'::jsonb,
    buyer_persona jsonb,
    hero_context jsonb,
    outline jsonb,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create index if not exists cims_deal_id_idx on public.cims (deal_id);

package collector

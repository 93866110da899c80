# The benchmark model (benchmarks/specs/full_year.toml) in brms, timed, for benchmarks/speed_vs_peers.py.
#
#   Rscript benchmarks/peers/brms_speed.R DATA.csv OUT.json CHAINS WARMUP DRAWS SEED
#
# DATA.csv: the tidy frame (drivers centred at their means). Writes compile and sampling
# seconds, minimum bulk/tail ESS and maximum R-hat over every parameter (rstan::monitor),
# and divergences to OUT.json.
suppressPackageStartupMessages({library(brms); library(rstan)})
args <- commandArgs(trailingOnly = TRUE)
data_file <- args[1]; out <- args[2]
chains <- as.integer(args[3]); warmup <- as.integer(args[4]); draws <- as.integer(args[5]); seed <- as.integer(args[6])
boost_dir <- file.path(tempdir(), "boost_include"); dir.create(boost_dir, showWarnings = FALSE)
if (!file.exists(file.path(boost_dir, "boost"))) file.symlink("/usr/include/boost", file.path(boost_dir, "boost"))
rstan_options(boost_lib = boost_dir)
d <- read.csv(data_file, stringsAsFactors = TRUE)
d$ward_in_borough <- interaction(d$borough, d$ward, drop = TRUE)
drv <- "engagement + effectiveness + accountability + security + crime_problems + visibility + informed"
f <- bf(as.formula(paste0("positive ~ 1 + ", drv, " + (1 + ", drv, " || borough) + (1 + ", drv,
                          " || ward_in_borough) + (1 | ethnicity) + (1 | age) + (1 | sex)")))
priors <- c(prior(normal(0, 1.5), class = Intercept), prior(normal(0, 1), class = b),
            prior(normal(0, 0.3), class = sd, group = borough),
            prior(normal(0, 0.5), class = sd, group = borough, coef = Intercept),
            prior(normal(0, 0.2), class = sd, group = ward_in_borough),
            prior(normal(0, 0.3), class = sd, group = ward_in_borough, coef = Intercept),
            prior(normal(0, 0.5), class = sd, group = ethnicity), prior(normal(0, 0.5), class = sd, group = age),
            prior(normal(0, 0.5), class = sd, group = sex))
t0 <- Sys.time()
code_model <- brm(f, data = d, family = bernoulli("logit"), prior = priors, chains = 0, backend = "rstan",
                  silent = 2)
t1 <- Sys.time()
# adapt_delta 0.8: Stan's default, the target acceptance every other job in the run samples at.
model <- update(code_model, recompile = FALSE, chains = chains, cores = min(chains, parallel::detectCores()),
                iter = warmup + draws, warmup = warmup, seed = seed, control = list(adapt_delta = 0.8),
                refresh = 0, silent = 2)
t2 <- Sys.time()
# monitor() returns a "simsummary", whose [ method wants both indices: take it as a plain table.
mon <- as.data.frame(rstan::monitor(model$fit, print = FALSE, warmup = 0))
mon <- mon[rownames(mon) != "lp__", , drop = FALSE]
res <- list(compile_s = as.numeric(difftime(t1, t0, units = "secs")),
            sampling_wall_s = as.numeric(difftime(t2, t1, units = "secs")),
            min_ess_bulk = min(mon$Bulk_ESS, na.rm = TRUE), min_ess_tail = min(mon$Tail_ESS, na.rm = TRUE),
            max_r_hat = max(mon$Rhat, na.rm = TRUE), divergences = rstan::get_num_divergent(model$fit),
            n_parameters = nrow(mon))
writeLines(paste0("{", paste(sprintf('"%s": %.10g', names(res), unlist(res)), collapse = ", "), "}"), out)

# Fit the pas_bayes hierarchical model with brms (Stan) and lme4, for benchmarks/peers/brms_agreement.py.
#
#   Rscript benchmarks/peers/brms_fit.R DATA.csv OUT_DIR CHAINS WARMUP DRAWS SEED
#
# DATA.csv is the tidy frame pas_bayes modelled (drivers already centred at their means, so
# that brms's group-level slopes use the same centred predictors as pas_bayes). Writes
# brms_draws.csv (the compared parameters, renamed to pas_bayes names), brms_sampler.csv,
# glmer_estimates.csv and timing.json into OUT_DIR.
suppressPackageStartupMessages({library(brms); library(rstan); library(lme4)})
args <- commandArgs(trailingOnly = TRUE)
data_file <- args[1]; out <- args[2]
chains <- as.integer(args[3]); warmup <- as.integer(args[4]); draws <- as.integer(args[5])
seed <- as.integer(args[6])
dir.create(out, showWarnings = FALSE, recursive = TRUE)

# Debian's r-cran-bh ships no Boost headers: point rstan at libboost-dev's.
boost_dir <- file.path(out, "boost_include"); dir.create(boost_dir, showWarnings = FALSE)
if (!file.exists(file.path(boost_dir, "boost"))) file.symlink("/usr/include/boost", file.path(boost_dir, "boost"))
rstan_options(boost_lib = boost_dir)

d <- read.csv(data_file, stringsAsFactors = TRUE)
d$ward_in_borough <- interaction(d$borough, d$ward, drop = TRUE)

# The same model as models/confidence.toml, written out: every driver's effect varies by
# borough, engagement and visibility also by ward within borough, uncorrelated (||),
# random intercepts for ethnicity, age and sex; the same priors (brms's sd priors are
# half-normal because sd has a lower bound of 0; its Intercept prior is on the intercept
# at the predictors' means, as pas_bayes's is).
f <- bf(positive ~ 1 + engagement + effectiveness + accountability + security + crime_problems +
          visibility + informed +
          (1 + engagement + effectiveness + accountability + security + crime_problems +
             visibility + informed || borough) +
          (1 + engagement + visibility || ward_in_borough) +
          (1 | ethnicity) + (1 | age) + (1 | sex))
priors <- c(
  prior(normal(0, 1.5), class = Intercept),
  prior(normal(0, 1), class = b),
  prior(normal(0, 0.3), class = sd, group = borough),
  prior(normal(0, 0.5), class = sd, group = borough, coef = Intercept),
  prior(normal(0, 0.2), class = sd, group = ward_in_borough),
  prior(normal(0, 0.3), class = sd, group = ward_in_borough, coef = Intercept),
  prior(normal(0, 0.5), class = sd, group = ethnicity),
  prior(normal(0, 0.5), class = sd, group = age),
  prior(normal(0, 0.5), class = sd, group = sex))

t0 <- Sys.time()
model <- brm(f, data = d, family = bernoulli("logit"), prior = priors, chains = chains,
             cores = min(chains, parallel::detectCores()), iter = warmup + draws, warmup = warmup,
             seed = seed, control = list(adapt_delta = 0.9), refresh = 0, silent = 2, backend = "rstan")
t1 <- Sys.time()
times <- rstan::get_elapsed_time(model$fit)

drv <- c("engagement", "effectiveness", "accountability", "security", "crime_problems", "visibility", "informed")
pars <- c("b_Intercept", paste0("b_", drv), "sd_borough__Intercept", paste0("sd_borough__", drv),
          "sd_ward_in_borough__Intercept", "sd_ward_in_borough__engagement", "sd_ward_in_borough__visibility",
          "sd_ethnicity__Intercept", "sd_age__Intercept", "sd_sex__Intercept")
names_pb <- c("intercept", paste0("beta[", drv, "]"), "sd_borough_intercept", paste0("sd_borough_slope[", drv, "]"),
              "sd_ward_intercept", "sd_ward_slope[engagement]", "sd_ward_slope[visibility]",
              "sd_ethnicity", "sd_age", "sd_sex")
arr <- as.array(model, variable = pars)  # iterations x chains x parameters
rows <- list()
for (ch in seq_len(dim(arr)[2])) {
  block <- as.data.frame(arr[, ch, pars])
  names(block) <- names_pb
  rows[[ch]] <- cbind(chain = ch - 1, draw = seq_len(nrow(block)) - 1, block)
}
write.csv(do.call(rbind, rows), file.path(out, "brms_draws.csv"), row.names = FALSE)
np <- nuts_params(model)
sampler <- data.frame(
  divergences = sum(np$Value[np$Parameter == "divergent__"]),
  mean_leapfrog = mean(np$Value[np$Parameter == "n_leapfrog__"]),
  max_treedepth = max(np$Value[np$Parameter == "treedepth__"]))
write.csv(sampler, file.path(out, "brms_sampler.csv"), row.names = FALSE)

# lme4 for reference: maximum likelihood (Laplace), the same structure.
g0 <- Sys.time()
glmer_fit <- tryCatch(
  glmer(positive ~ 1 + engagement + effectiveness + accountability + security + crime_problems +
          visibility + informed +
          (1 + engagement + effectiveness + accountability + security + crime_problems +
             visibility + informed || borough) +
          (1 + engagement + visibility || ward_in_borough) + (1 | ethnicity) + (1 | age) + (1 | sex),
        data = d, family = binomial, control = glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 2e5))),
  error = function(e) e)
g1 <- Sys.time()
if (inherits(glmer_fit, "error")) {
  glmer_out <- data.frame(parameter = "error", estimate = NA, se = NA, note = conditionMessage(glmer_fit))
} else {
  fe <- summary(glmer_fit)$coefficients
  vc <- as.data.frame(VarCorr(glmer_fit))
  msgs <- paste(glmer_fit@optinfo$conv$lme4$messages, collapse = "; ")
  glmer_out <- rbind(
    data.frame(parameter = c("intercept", paste0("beta[", drv, "]")), estimate = fe[, 1], se = fe[, 2],
               note = msgs),
    data.frame(parameter = paste(vc$grp, vc$var1), estimate = vc$sdcor, se = NA, note = msgs))
}
write.csv(glmer_out, file.path(out, "glmer_estimates.csv"), row.names = FALSE)
writeLines(sprintf(paste0('{"brms_wall_seconds": %.1f, "stan_warmup_seconds": %.1f, "stan_sampling_seconds": %.1f, ',
                          '"glmer_seconds": %.1f, "brms_version": "%s", "rstan_version": "%s", "lme4_version": "%s"}'),
                   as.numeric(difftime(t1, t0, units = "secs")), max(times[, "warmup"]), max(times[, "sample"]),
                   as.numeric(difftime(g1, g0, units = "secs")), packageVersion("brms"), packageVersion("rstan"),
                   packageVersion("lme4")), file.path(out, "timing.json"))

import NestcheckCLI

Nestcheck.runMain()

/**
 * `podscope` command line: `serve` (the default) runs the sidecar; other commands are added here.
 */
import { runServe } from '../main.js';
import { VERSION } from '../version.js';

const USAGE = `podscope ${VERSION}: debug sidecar for ComfyUI on RunPod GPU pods

Usage:
  podscope [serve]      run the sidecar (configured by environment variables; see README)
  podscope --version    print the version
  podscope --help       print this help
`;

export async function cli(argv: string[], env: Record<string, string | undefined>): Promise<number> {
  const [command = 'serve', ...rest] = argv;
  switch (command) {
    case 'serve':
      if (rest.includes('--help') || rest.includes('-h')) {
        process.stdout.write(USAGE);
        return 0;
      }
      return runServe(env);
    case '--version':
    case '-v':
      process.stdout.write(`${VERSION}\n`);
      return 0;
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`podscope: unknown command "${command}"\n\n${USAGE}`);
      return 64;
  }
}

/** A sleep that stop() can cut short, so a loop waiting for its next cycle ends at once. */
export class Sleeper {
  #wake: (() => void) | undefined;

  async sleep(ms: number): Promise<void> {
    if (ms <= 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.#wake = undefined;
  }

  wake(): void {
    this.#wake?.();
  }
}

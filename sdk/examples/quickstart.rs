use tessera::Client;
use tessera::array::{self, Axes};

fn main() -> tessera::Result<()> {
    let client = Client::local(); // scheduler + one task thread per core, in-process
    let x = array::random::random_sample(&[4000, 4000], &[1000, 1000], 7)?; // lazy
    let y = x.add(&x.t()?)?; // still lazy: 16 fused random+transpose+add tasks
    let mean = y.mean(Axes::All)?; // a tree reduction over the blocks
    assert_eq!(mean.shape(), &[] as &[u64]);
    let total = y.persist_with(&client)?; // computed once, kept in memory
    let m = total.mean(Axes::All)?.compute_with(&client)?; // reuses the persisted blocks
    assert!((m.first().unwrap().to_f64() - 1.0).abs() < 0.01);
    Ok(())
}
